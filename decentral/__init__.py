"""polyak.decentral: distributed algorithms written once per worker on a named axis."""
