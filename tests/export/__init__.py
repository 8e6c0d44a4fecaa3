"""Tests of the optional export extra (edgesam.export): torch network, ONNX files, CLI."""
