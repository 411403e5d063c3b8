"""Training: typed run configs, the stage-wise trainer (static, CEN, two-stage DynMM), DDP.

`from edgefuse.train.trainer import train`; `edgefuse.train.config.load_config(path)`.
"""
