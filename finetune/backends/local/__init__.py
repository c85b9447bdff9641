"""The local target's machinery: train, track, register and serve with no cloud.

Importing any of these modules is cheap (stdlib only); torch, transformers, peft, mlflow and matplotlib are
imported inside the functions that need them.

    config      LocalTrainConfig (JSON-serializable job description), ModelSource, TinyModel, MlflowSettings
    trainjob    launch / observe / wait / cancel a detached training job; JobState, JobStatus
    registry    register_model, find_model_version, model_version_path, delete_model_versions, get_run_metrics
    server      start_server / server_status / stop_server / score: the Azure ML chat-completion shape over HTTP
    (the loss curve's renderings, shared with the Azure ML target, live in finetune.backends.lossplot)
    layout      StateLayout: where things live under the project's state folder
Internals: training (runs inside the job process), tiny (tokenizer + model from a config), chatdata (chat template
encoding with assistant-only labels), metricslog + mlflowsync (metrics file and the MLflow sidecar process that
ships it), tracking (MLflow client and run logging), cputhreads, proc.
"""
