"""Results to pandas dataframes, plots and reports.

history   a run's history (SCENARIOS.md format) paired into DataFrames: sends, polls, ...
metrics   MetricsRecorder: gauges sampled by the run loop + per-second series -> metrics.csv
summary   build_summary -> summary.json; render -> the printed table
plots     write_plots -> plots/*.png with faults shaded
results   write_results -> the whole results folder
load      load_run(dir) -> a results folder back as DataFrames (for notebooks)

Nothing is imported here, so `import analysis.history` stays free of matplotlib.
"""
