//! GTO-compatible tags (`--gto`): placeholder until the GTO helper lands.
