"""The migration applier: goose SQL parser, migration sources, version store, runner."""
