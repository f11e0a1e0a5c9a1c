"""The parameter-server cluster's pieces: who a task is (`spec`: TF_CONFIG roles), what it runs
(`strategy`: ps/worker servers, the chief's ParameterServerStrategy and table partitioner), the tf.data
service that feeds the workers (`data_service`), the evaluator task (`sidecar`), the chief's stall
watchdog (`stall_watchdog`) and a task's exit when its launcher dies (`lifeline`).

Networks, losses, data readers and dataset makers know nothing of where they run: none of them imports
this package (`tests/test_layering.py`), with one exception written down there: the data pipeline reads
a cluster's batches through `data_service`.
"""
