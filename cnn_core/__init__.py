"""cnn_core: the engine of CNN Lab (datasets, models, training runs, inspection); no Streamlit."""
