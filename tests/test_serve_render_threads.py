"""The server's render threads: torch runs on one thread in each, and only there."""

import sys
import threading

import pytest
import torch

from s3d_fast.serve import threads


@pytest.mark.skipif(sys.platform != "linux", reason="the OpenMP runtime is found in /proc/self/maps (Linux)")
def test_a_render_thread_runs_torch_on_one_thread_and_leaves_the_other_threads_theirs():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert threads.render_pool().submit(torch.get_num_threads).result() == 1
        assert torch.get_num_threads() == 2
        seen = []
        other = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
        other.start()
        other.join()
        assert seen == [2]
    finally:
        torch.set_num_threads(before)
