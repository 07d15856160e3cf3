"""Display outputs: one small module per kind, loaded only when configured."""
