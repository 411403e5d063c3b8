"""The runtime: run a bundle per frame (`edgefuse run`) and measure it (`edgefuse bench`).

Modules, one concept each: `runners/` (inference backends behind one interface),
`policy` (which path a frame takes), `frames` (camera frame -> input tensors, bad-frame
policy), `pipeline` (the per-frame loop), `sinks` (window, video, masks, JSON lines),
`summary` (end-of-run table), `stats` / `bench` / `report` (latency per gating path).
Importing this package is light: backends import their engines when activated.
"""
