"""edgefuse segmentation node (ROS 2). Next to realsense-ros:

    ros2 launch realsense2_camera rs_launch.py align_depth.enable:=true
    ros2 launch edgefuse_ros segmentation.launch.py bundle:=/path/to/bundle

Outputs: ~/mask (mono8), ~/mask_color, ~/overlay (rgb8, while subscribed), ~/frame_info,
~/classes (transient local), /diagnostics; ~/camera_info with mask_size:=network.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

# name -> (default or None: required, type, description); topics default to realsense-ros ROS 2 names.
ARGUMENTS = {
    "bundle": (None, str, "bundle folder written by `edgefuse export` (required)"),
    "backend": ("ort", str, "ort, tensorrt or torch"),
    "budget_ms": ("0.0", float, "latency budget for stem/gate + path in ms (0: none)"),
    "rgb_topic": ("/camera/camera/color/image_raw", str, "colour image topic"),
    "depth_topic": ("/camera/camera/aligned_depth_to_color/image_raw", str, "depth aligned to colour; empty: RGB only"),
    "camera_info_topic": ("/camera/camera/color/camera_info", str, "colour camera_info topic"),
    "mask_size": ("camera", str, "camera or network"),
    "sync_slop": ("0.02", float, "s: colour and depth further apart are not paired"),
    "depth_timeout": ("1.0", float, "s without depth before frames run RGB-only"),
    "input_qos": ("auto", str, "subscriptions: auto (reliable when the camera publishes reliable), "
                               "sensor_data (best effort) or reliable"),
    "output_qos": ("reliable", str, "publishers: reliable or best_effort"),
    "calibration": ("", str, "camera_info YAML (edgefuse calibrate): replaces camera_info's intrinsics"),
    "register_depth": ("false", bool, "depth_topic is raw depth: register it with the calibration's depth_to_color"),
}


def generate_launch_description():
    declared = [DeclareLaunchArgument(name, description=doc, **({} if default is None else {"default_value": default}))
                for name, (default, _, doc) in ARGUMENTS.items()]
    declared.append(DeclareLaunchArgument("node_name", default_value="edgefuse", description="node name"))
    parameters = {name: ParameterValue(LaunchConfiguration(name), value_type=kind)
                  for name, (_, kind, _) in ARGUMENTS.items()}
    node = Node(package="edgefuse_ros", executable="edgefuse_node", name=LaunchConfiguration("node_name"),
                output="screen", parameters=[parameters])
    return LaunchDescription([*declared, node])
