"""Analysis on recorded runs: metrics, streaming, partitions, averaging, selection, comparison, plots."""
