"""Running the model: NEURON settings, run loop in chunks, run summary."""
