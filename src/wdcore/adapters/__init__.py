"""Adapters that put a wdcore Machine into an emulator (API.md, "Adapters")."""
