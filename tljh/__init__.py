"""Compatibility with TLJH plugins: the public names they import from `tljh.hooks`,
`tljh.config`, `tljh.user`, `tljh.utils`, `tljh.apt` and `tljh.conda` (docs/plugins.md)."""
