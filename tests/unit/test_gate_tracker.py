"""The gate tracker's rules: confirmation, one pass per pallet, identity upgrades, settling."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from edge.gates.tracker import Code, PalletPass, Sighting, Tracker, group_codes

SSCC_A = "069123456789012340"
SSCC_B = "069123456789012357"
GTIN = "26937406812419"
GTIN_2 = "06901234567892"


def sscc(value: str = SSCC_A, centre=None, **kw) -> Code:
    return Code("sscc", sscc=value, centre=centre, **kw)


def gtin(value: str = GTIN, lot: str | None = "L1", centre=None, **kw) -> Code:
    return Code("gtin", gtin=value, lot=lot, centre=centre, **kw)


def frame(at: float, *codes: Code, camera: str = "cam-1", snapshot: bool = False) -> Sighting:
    return Sighting(camera, at, tuple(codes), snapshot)


def actions(updates) -> list[tuple[str, str]]:
    return [(u.action, u.passage.key) for u in updates]


def make(**kw) -> Tracker:
    options = {"window_s": 60.0, "confirm_window_s": 3.0, "settle_s": 2.0, "settle_max_s": 30.0}
    return Tracker(**(options | kw))


# --- confirmation ---------------------------------------------------------------------------


def test_one_frame_of_a_stream_is_not_enough():
    tracker = make()
    assert tracker.observe(frame(0.0, sscc())) == []
    assert tracker.tick(10.0) == []
    assert tracker.passes == []


def test_two_frames_of_the_same_camera_within_the_window_open_a_pass():
    tracker = make()
    tracker.observe(frame(0.0, sscc()))
    updates = tracker.observe(frame(0.5, sscc()))
    assert actions(updates) == [("opened", f"sscc:{SSCC_A}")]
    passage = updates[0].passage
    assert (passage.first_seen, passage.last_seen, passage.frames) == (0.0, 0.5, 2)
    assert passage.cameras == ("cam-1",) and not passage.settled


def test_two_frames_too_far_apart_do_not_confirm():
    tracker = make()
    tracker.observe(frame(0.0, sscc()))
    assert tracker.observe(frame(3.5, sscc())) == []
    # ...but that second frame starts a new candidate window.
    assert actions(tracker.observe(frame(4.0, sscc()))) == [("opened", f"sscc:{SSCC_A}")]


def test_two_cameras_seeing_it_once_each_do_not_confirm():
    tracker = make()
    tracker.observe(frame(0.0, sscc(), camera="cam-1"))
    assert tracker.observe(frame(0.2, sscc(), camera="cam-2")) == []


def test_the_same_code_twice_on_one_frame_counts_once():
    tracker = make()
    assert tracker.observe(frame(0.0, sscc(), sscc())) == []


def test_a_checked_code_on_a_pushed_snapshot_counts_at_once():
    tracker = make()
    updates = tracker.observe(frame(0.0, sscc(), snapshot=True))
    assert actions(updates) == [("opened", f"sscc:{SSCC_A}")]
    assert updates[0].passage.frames == 1


def test_an_unchecked_code_on_a_snapshot_still_needs_two_frames():
    tracker = make()
    code = Code("container", container="CSQU3054383", checked=False)
    assert tracker.observe(frame(0.0, code, snapshot=True)) == []
    assert actions(tracker.observe(frame(1.0, code, snapshot=True))) == [
        ("opened", "container:CSQU3054383")
    ]


def test_confirmation_window_is_sliding():
    tracker = make(confirm_frames=3)
    for at in (0.0, 2.0):
        assert tracker.observe(frame(at, sscc())) == []
    assert tracker.observe(frame(3.5, sscc())) == []  # the 0.0 frame fell out
    assert actions(tracker.observe(frame(4.0, sscc()))) == [("opened", f"sscc:{SSCC_A}")]


# --- one pass per pallet --------------------------------------------------------------------


def test_repeated_sightings_within_the_window_make_one_pass():
    tracker = make()
    opened = []
    for step in range(40):
        for update in tracker.observe(frame(step * 0.5, sscc())):
            opened += [update] if update.action == "opened" else []
        tracker.tick(step * 0.5)
    assert len(opened) == 1
    (passage,) = tracker.passes
    assert passage.frames == 40 and passage.last_seen == 19.5


def test_a_pallet_that_comes_back_within_the_window_is_the_same_pass():
    tracker = make()
    tracker.observe(frame(0.0, sscc()))
    tracker.observe(frame(0.5, sscc()))
    assert actions(tracker.tick(5.0)) == [("settled", f"sscc:{SSCC_A}")]
    # The forklift backs up and drives through again 50 s later.
    updates = tracker.observe(frame(50.0, sscc()))
    assert actions(updates) == [("seen", f"sscc:{SSCC_A}")]
    assert updates[0].passage.settled and updates[0].passage.frames == 3
    assert tracker.tick(60.0) == []  # settled once only


def test_the_window_runs_from_the_last_sighting():
    tracker = make()
    tracker.observe(frame(0.0, sscc()))
    tracker.observe(frame(0.5, sscc()))
    for at in (50.0, 100.0, 150.0):  # each within 60 s of the one before
        tracker.tick(at)
        assert actions(tracker.observe(frame(at, sscc()))) == [("seen", f"sscc:{SSCC_A}")]
    assert len(tracker.passes) == 1


def test_after_the_window_the_same_pallet_makes_a_new_pass():
    tracker = make()
    tracker.observe(frame(0.0, sscc()))
    tracker.observe(frame(0.5, sscc()))
    tracker.tick(5.0)
    tracker.tick(61.0)
    assert tracker.passes == []
    tracker.observe(frame(70.0, sscc()))
    assert actions(tracker.observe(frame(70.5, sscc()))) == [("opened", f"sscc:{SSCC_A}")]


def test_a_second_camera_joins_the_pass():
    tracker = make()
    tracker.observe(frame(0.0, sscc()))
    tracker.observe(frame(0.5, sscc()))
    updates = tracker.observe(frame(0.7, sscc(), camera="cam-2"))
    assert updates[0].passage.cameras == ("cam-1", "cam-2")


def test_two_pallets_in_view_make_two_passes():
    tracker = make()
    tracker.observe(frame(0.0, sscc(SSCC_A), sscc(SSCC_B)))
    updates = tracker.observe(frame(0.5, sscc(SSCC_A), sscc(SSCC_B)))
    assert sorted(actions(updates)) == [
        ("opened", f"sscc:{SSCC_A}"),
        ("opened", f"sscc:{SSCC_B}"),
    ]


def test_pallets_sharing_gtin_and_lot_stay_apart_by_their_sscc():
    tracker = make()
    for at in (0.0, 0.5):
        tracker.observe(frame(at, sscc(SSCC_A), gtin()))
    tracker.tick(4.0)
    updates = []
    for at in (5.0, 5.5):
        updates += tracker.observe(frame(at, sscc(SSCC_B), gtin()))
    assert actions(updates) == [("opened", f"sscc:{SSCC_B}")]
    assert len(tracker.passes) == 2


# --- identities -----------------------------------------------------------------------------


def test_gtin_read_with_the_sscc_is_kept_on_the_pass():
    tracker = make()
    tracker.observe(frame(0.0, sscc(), gtin()))
    (update,) = tracker.observe(frame(0.5, sscc(), gtin()))
    assert (update.passage.kind, update.passage.gtin, update.passage.lot) == ("sscc", GTIN, "L1")


def test_gtin_alone_right_after_the_sscc_joins_that_pass():
    tracker = make()
    tracker.observe(frame(0.0, sscc(), gtin()))
    tracker.observe(frame(0.5, sscc(), gtin()))
    # The SSCC barcode is blurred on the next frames; only the GTIN+lot code reads.
    assert actions(tracker.observe(frame(1.0, gtin()))) == [("seen", f"sscc:{SSCC_A}")]
    assert actions(tracker.observe(frame(1.5, gtin()))) == [("seen", f"sscc:{SSCC_A}")]
    assert len(tracker.passes) == 1


def test_gtin_alone_long_after_the_sscc_is_another_pallet():
    tracker = make()
    tracker.observe(frame(0.0, sscc(), gtin()))
    tracker.observe(frame(0.5, sscc(), gtin()))
    tracker.tick(10.0)
    tracker.observe(frame(20.0, gtin()))
    assert actions(tracker.observe(frame(20.5, gtin()))) == [("opened", f"gtin:{GTIN}:L1")]


def test_a_gtin_pass_becomes_an_sscc_pass_before_it_settles():
    tracker = make()
    tracker.observe(frame(0.0, gtin()))
    assert actions(tracker.observe(frame(0.5, gtin()))) == [("opened", f"gtin:{GTIN}:L1")]
    (update,) = tracker.observe(frame(1.0, sscc(), gtin()))
    assert (update.action, update.passage.kind, update.passage.sscc) == ("seen", "sscc", SSCC_A)
    assert update.passage.number == 1 and update.passage.frames == 3
    assert actions(tracker.tick(3.5)) == [("settled", f"sscc:{SSCC_A}")]


def test_a_settled_gtin_pass_is_not_upgraded():
    tracker = make()
    tracker.observe(frame(0.0, gtin()))
    tracker.observe(frame(0.5, gtin()))
    tracker.tick(3.0)
    tracker.observe(frame(3.1, sscc(), gtin()))
    assert actions(tracker.observe(frame(3.4, sscc(), gtin()))) == [("opened", f"sscc:{SSCC_A}")]


def test_gtin_without_lot_is_the_same_goods_as_with_lot():
    (group,) = group_codes((gtin(lot=None), gtin(lot="L1")))
    assert (group.kind, group.gtin, group.lot) == ("gtin", GTIN, "L1")


def test_gtins_pair_with_the_nearest_sscc_on_the_frame():
    groups = group_codes(
        (
            sscc(SSCC_A, centre=(100, 100)),
            sscc(SSCC_B, centre=(900, 100)),
            gtin(GTIN, "A1", centre=(110, 40)),
            gtin(GTIN_2, "B1", centre=(880, 40)),
        )
    )
    found = {g.sscc: (g.gtin, g.lot) for g in groups}
    assert found == {SSCC_A: (GTIN, "A1"), SSCC_B: (GTIN_2, "B1")}


def test_with_several_sscc_and_no_positions_a_gtin_is_not_guessed():
    groups = group_codes((sscc(SSCC_A), sscc(SSCC_B), gtin()))
    assert sorted(g.kind for g in groups) == ["gtin", "sscc", "sscc"]


def test_container_numbers_are_their_own_pass():
    tracker = make()
    box = Code("container", container="CSQU3054383")
    tracker.observe(frame(0.0, box, sscc()))
    updates = tracker.observe(frame(0.5, box, sscc()))
    assert sorted(actions(updates)) == [
        ("opened", "container:CSQU3054383"),
        ("opened", f"sscc:{SSCC_A}"),
    ]


# --- settling -------------------------------------------------------------------------------


def test_a_pass_settles_once_out_of_sight():
    tracker = make()
    tracker.observe(frame(0.0, sscc()))
    tracker.observe(frame(0.5, sscc()))
    assert tracker.tick(2.0) == []
    assert actions(tracker.tick(2.5)) == [("settled", f"sscc:{SSCC_A}")]
    assert tracker.tick(3.0) == []


def test_a_pallet_standing_in_view_settles_after_the_maximum():
    tracker = make(settle_max_s=10.0)
    settled = []
    for step in range(30):
        tracker.observe(frame(step * 0.5, sscc()))
        settled += tracker.tick(step * 0.5)
    assert [u.passage.first_seen for u in settled] == [0.0]


def test_frames_without_codes_change_nothing():
    tracker = make()
    assert tracker.observe(frame(0.0)) == []


# --- restart --------------------------------------------------------------------------------


def remembered(settled: bool, last_seen: float = 10.0) -> PalletPass:
    return PalletPass(0, "sscc", SSCC_A, GTIN, "L1", None, 9.0, last_seen, 4, ("cam-1",), settled)


def test_an_adopted_pass_absorbs_new_sightings():
    tracker = make()
    adopted = tracker.adopt(remembered(settled=True))
    updates = tracker.observe(frame(20.0, sscc()))
    assert [(u.action, u.passage.number) for u in updates] == [("seen", adopted.number)]


def test_an_adopted_open_pass_settles():
    tracker = make()
    tracker.adopt(remembered(settled=False))
    assert actions(tracker.tick(20.0)) == [("settled", f"sscc:{SSCC_A}")]


# --- a whole dock day -----------------------------------------------------------------------


@st.composite
def dock_days(draw):
    """Pallets crossing one camera at 2 fps: each pallet in view for 2-8 frames, some read
    only now and then, some coming back within the window; gaps between pallets."""
    count = draw(st.integers(1, 8))
    events = []
    at = 0.0
    for number in range(count):
        code = f"{number:017d}"
        seen = draw(st.integers(2, 8))
        misses = draw(st.lists(st.booleans(), min_size=seen, max_size=seen))
        reads = [not miss for miss in misses]
        reads[0] = reads[1] = True  # a pallet the camera never reads twice is not countable
        for read in reads:
            events.append((at, code if read else None))
            at += 0.5
        if draw(st.booleans()):  # comes back within the window
            at += draw(st.floats(5.0, 40.0))
            events.append((at, code))
            at += 0.5
        at += draw(st.floats(2.5, 20.0))
    return count, events


@given(dock_days())
def test_every_pallet_makes_exactly_one_pass(day):
    count, events = day
    tracker = make()
    opened: list[str] = []
    settled: list[str] = []
    for at, code in events:
        for update in tracker.tick(at):
            settled.append(update.passage.sscc or "")
        codes = (sscc(code),) if code else ()
        for update in tracker.observe(frame(at, *codes)):
            if update.action == "opened":
                opened.append(update.passage.sscc or "")
    settled += [u.passage.sscc or "" for u in tracker.tick(events[-1][0] + 100)]
    assert sorted(opened) == sorted(f"{n:017d}" for n in range(count))
    assert sorted(settled) == sorted(opened)
