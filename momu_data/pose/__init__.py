"""Poses: one person's 2D keypoints over time (`track.PoseTrack`), from a video with mediapipe
Pose (`mediapipe_pose`), or from keypoint files users already have (`importers/`), cleaned,
normalised and resampled onto the mel time base (`interpolate`)."""
