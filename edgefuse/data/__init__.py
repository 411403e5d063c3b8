"""Datasets: the synthetic RGB-D benchmark, NYUv2 / SUN RGB-D converters, one loader, transforms.

Importing this package is light (numpy only). torch is imported by `edgefuse.data.dataset`
and `edgefuse.data.transforms`, open3d by `edgefuse.data.synth.render`, h5py by
`edgefuse.data.nyuv2`: import the module you need.
"""
