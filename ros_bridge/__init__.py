"""edgefuse.ros_bridge: the ROS node (issue 12). A pure core (core.py and what it imports:
no ROS client library) and thin adapters, ros1.py (rospy) and ros2.py (rclpy), imported only
when a node starts; bag_sink.py writes the same messages to a bag offline. The ROS packages
that launch the node (catkin and ament_python, both named edgefuse_ros) are under packages/."""
