"""Explanations of a trained network: predicting, preprocessing drawings and uploads, filters and
feature maps, attribution, activation maximisation, evaluation and mistakes, the convolution."""
