"""Content: pack, roster and activity schemas, their readers with precise errors, and the loaders."""
