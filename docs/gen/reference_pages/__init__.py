"""Reference pages generated from the code at docs build time (mkdocs-gen-files)."""
