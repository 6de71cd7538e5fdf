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


@pytest.mark.skipif(sys.platform != "linux", reason="the OpenMP runtime is found in /proc/self/maps (Linux)")
def test_a_thread_lowers_its_own_count_for_a_block_and_gets_it_back():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:

        def inside():
            with threads.threads_of_this_thread(1) as had:
                seen = [had, torch.get_num_threads()]
                with threads.threads_of_this_thread(had):
                    seen.append(torch.get_num_threads())
                seen.append(torch.get_num_threads())
            return seen + [torch.get_num_threads()]

        worker = threading.Thread(target=lambda: result.extend(inside()))
        result = []
        worker.start()
        worker.join()
        assert result == [2, 1, 2, 1, 2]
        assert torch.get_num_threads() == 2  # the calling thread kept its own
    finally:
        torch.set_num_threads(before)
