"""edgefuse.calibration: camera calibration (boards, intrinsics, depth-to-colour extrinsics,
view capture). INT8 calibration is part of the compiler step: `edgefuse.export.int8` and
`edgefuse.export.calib_frames`."""
