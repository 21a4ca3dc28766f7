"""What is true of session ids (the README says it): unique within an install across API replicas and restarts,
increasing within one replica, and not in creation order across replicas, which take ids in blocks."""

from __future__ import annotations

from tmk_cluster.waiting import wait_until
from tmk_common.kubeclient import api_client
from tmk_common.session_store import ID_BLOCK_SIZE, SessionStore, id_counter_name

from .conftest import INSTALL


def test_replicas_take_ids_in_blocks_unique_but_not_in_creation_order(api_kubeconfig, namespace):
    replica_a, replica_b = (SessionStore(api_client(api_kubeconfig), namespace, INSTALL) for _ in range(2))
    first = replica_a.next_id()
    from_b = replica_b.next_id()  # numbered after `first`, from B's own block
    later_from_a = replica_a.next_id()
    assert from_b == first + ID_BLOCK_SIZE and later_from_a == first + 1
    assert later_from_a < from_b, "a later session may carry a smaller id: order by time, not by id"
    restarted = SessionStore(api_client(api_kubeconfig), namespace, INSTALL)  # a replica's restart: a new block
    assert restarted.next_id() == first + 2 * ID_BLOCK_SIZE
    taken = [replica_a.next_id() for _ in range(ID_BLOCK_SIZE)]  # A runs past its block into a fresh one
    assert taken == sorted(taken) and taken[-1] == first + 3 * ID_BLOCK_SIZE + 1  # 3..50, then 151, 152
    assert len({first, from_b, later_from_a, *taken}) == 2 + 1 + ID_BLOCK_SIZE


def test_a_replica_reserves_its_next_block_while_half_of_its_block_is_left(api_kubeconfig, namespace, cluster):
    """Under a steady stream of creates none waits for a block: the next is reserved in the background once half
    of the block in use is taken, and the rest of the block and the next one's first ids come without a write."""
    replica = SessionStore(api_client(api_kubeconfig), namespace, INSTALL)
    first = replica.next_id()

    def counter() -> int:
        data = cluster.core.read_namespaced_config_map(id_counter_name(INSTALL), namespace).data
        return int(data["next"])

    assert counter() == first + ID_BLOCK_SIZE
    half = [replica.next_id() for _ in range(ID_BLOCK_SIZE // 2 - 2)]
    assert counter() == first + ID_BLOCK_SIZE, "more than half of the block is left: nothing reserved yet"
    half.append(replica.next_id())  # half of the block is left now
    wait_until(lambda: counter() == first + 2 * ID_BLOCK_SIZE, timeout=10, what="the next block reserved")
    rest = [replica.next_id() for _ in range(ID_BLOCK_SIZE // 2 + 2)]
    assert [first, *half, *rest] == [*range(first, first + ID_BLOCK_SIZE + 2)]
    assert counter() == first + 2 * ID_BLOCK_SIZE, "the block reserved ahead served, with no reservation more"
