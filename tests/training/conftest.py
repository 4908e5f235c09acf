"""One intra-op thread for the training tests: on a shared 2-core machine two OpenMP threads spin-wait
for each other and a tiny model's step goes from ~0.1 s to seconds."""
import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
