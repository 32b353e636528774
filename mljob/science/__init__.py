"""The science: the only runtime code that imports geneplexus, numpy, pandas, scipy or scikit-learn.

It runs in job processes (`mljob.job_process`), never in the host: the pipeline of a job (`pipeline`), the
one way GenePlexus is opened (`session`), the warm backend-data cache (`data_cache`), the fast path
(`fast_path`), the run-time patching they share (`patching`), the web-ready result files (`web_files`),
job_info.json's numbers (`job_info`), what gpz-convert-ids computes (`convert_ids`) and result tables as
DataFrames (`tables`). Every module here imports the ML stack lazily, so importing one stays cheap.
"""
