"""The core: run folders, files, ids, errors, the output guard, the data binding, the recorder hooks and the one text cutter. Knows no kind of run."""
