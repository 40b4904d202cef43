"""LiDAR: point clouds in, 3D boxes out (SAM3D: segment anything on the bird's-eye view).

    cloud = read_points("000123.bin")               # vfm.lidar.io: KITTI .bin, .pcd, .ply, .npy
    detector = Lidar3D(segmenter)                    # vfm.lidar.detect3d
    boxes = detector.detect(cloud, classes=["Car"])  # vfm.lidar.boxes.Boxes3D, LiDAR frame

Coordinates are the sensor's (KITTI velodyne: x forward, y left, z up, metres). Boxes are written
as KITTI labels (camera frame, through a calibration file when given) by vfm.formats.kitti.
"""
