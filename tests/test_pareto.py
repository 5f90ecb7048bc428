"""The one Pareto front: dominance on hand-made points, fronts of objects, and the plotter."""

from anas_zoo.pareto import Panel, Series, front_of, pareto_front, plot_panels


def test_front_of_hand_made_points():
    # (latency, accuracy): b dominates a (faster and more accurate); c is slower but more accurate;
    # d ties c in accuracy but is slower; e has no accuracy; f equals b exactly (neither dominates)
    points = [(10.0, 70.0), (8.0, 72.0), (12.0, 75.0), (13.0, 75.0), (1.0, None), (8.0, 72.0)]
    assert pareto_front(points) == [False, True, True, False, False, True]


def test_front_edge_cases():
    assert pareto_front([]) == []
    assert pareto_front([(5.0, 50.0)]) == [True]
    # same latency, better accuracy wins; same accuracy, lower latency wins
    assert pareto_front([(5.0, 50.0), (5.0, 51.0)]) == [False, True]
    assert pareto_front([(5.0, 50.0), (4.0, 50.0)]) == [False, True]


def test_front_of_objects_is_sorted_by_cost_and_keeps_ties():
    items = [("c", 12.0, 75.0), ("a", 10.0, 70.0), ("b", 8.0, 72.0), ("b2", 8.0, 72.0), ("d", 9.0, 60.0)]
    front = front_of(items, cost=lambda i: i[1], accuracy=lambda i: i[2])
    assert [i[0] for i in front] == ["b", "b2", "c"]


def test_plot_panels_writes_a_png_even_without_panels(tmp_path):
    panel = Panel([Series("all", [(1.0, 50.0), (2.0, 40.0)], "background"), Series("front", [(1.0, 50.0)], "front")],
                  "ms", "top-1 %", "a title", names=[(1.0, 50.0, "m")])
    for panels in ([panel, panel, panel], []):
        path = plot_panels(panels, tmp_path / f"{len(panels)}.png")
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
