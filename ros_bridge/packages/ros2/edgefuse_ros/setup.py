"""ament_python package that launches the edgefuse segmentation node (the node itself is the
edgefuse Python package's: `pip install edgefuse` into the Python ROS 2 runs)."""
from setuptools import setup

PACKAGE = "edgefuse_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=[],
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", ["launch/segmentation.launch.py"]),
        (f"share/{PACKAGE}/config", ["config/fastdds_shm_large_images.xml"]),
    ],
    scripts=["scripts/edgefuse_node"],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="edgefuse maintainers",
    maintainer_email="edgefuse@example.com",
    description="edgefuse segmentation node (ROS 2)",
    license="Apache-2.0",
)
