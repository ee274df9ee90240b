"""One package per paper: its record, experiment hooks, analysis (tables and claims), figures and own
modules. Nothing outside dlx/papers (but the catalog) imports a paper."""
