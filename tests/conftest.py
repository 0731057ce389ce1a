"""Suite-wide fixtures."""
import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Small tensors: one torch thread is faster, and much faster on busy cores."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
