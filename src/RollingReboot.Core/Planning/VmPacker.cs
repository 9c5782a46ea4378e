namespace RollingReboot.Core.Planning;

internal enum Fit
{
    First,
    Worst,
    Best,
}

/// <summary>A VM left without room, with the target that had the most free memory (-1 when there was none).</summary>
internal readonly record struct UnplacedVm(int Vm, int Roomiest, long RoomiestFree);

/// <summary>
/// Puts VMs on target hosts in one step (first, worst or best fit) and, when one fits nowhere, makes room for it
/// by re-placing VMs placed earlier in the same step. It changes nothing but the <see cref="PlacementState"/> it is
/// given; which hosts are sources and targets is the simulator's business.
/// </summary>
internal sealed class VmPacker
{
    // Candidate checks allowed to make room in one placement (see MakeRoom).
    private const int RepairBudget = 200_000;

    private readonly PlanIndex _index;

    public VmPacker(PlanIndex index)
    {
        _index = index;
    }

    private enum Repair
    {
        Done,
        NotFound,
        OutOfBudget,
    }

    /// <summary>Whether every VM on these hosts finds room on the targets; leaves the state as it was.</summary>
    public bool Fits(PlacementState sim, int[] sources, int[] targets)
    {
        int checkpoint = sim.Checkpoint;
        int unplaced = PlaceBest(sim, sources, targets).Count;
        sim.Rollback(checkpoint);
        return unplaced == 0;
    }

    /// <summary>The VMs on these hosts, largest first, by worst fit (to spread them); by best fit if that places more.</summary>
    public List<UnplacedVm> PlaceBest(PlacementState sim, int[] sources, int[] targets)
    {
        var vms = sim.VmsOn(sources);
        int checkpoint = sim.Checkpoint;
        var worst = Place(sim, vms, targets, Fit.Worst);
        if (worst.Count == 0)
        {
            return worst;
        }

        sim.Rollback(checkpoint);
        var best = Place(sim, vms, targets, Fit.Best);
        if (best.Count < worst.Count)
        {
            return best;
        }

        sim.Rollback(checkpoint);
        return Place(sim, vms, targets, Fit.Worst);
    }

    /// <summary>
    /// Places the VMs in this order; those without room stay where they are and are returned. The VMs of a "keep
    /// together" bundle go where the first of them goes, chosen for all of them; those of a "prefer together" group
    /// prefer the target the first of them went to.
    /// </summary>
    public List<UnplacedVm> Place(PlacementState sim, int[] vms, int[] targets, Fit fit)
    {
        int checkpoint = sim.Checkpoint;
        var left = new List<int>();
        var bundled = new List<int>();
        Dictionary<int, int>? bundleTarget = null;
        Dictionary<int, List<(int Vm, int From)>>? bundlePlaced = null;
        Dictionary<int, int>? preferredTarget = null;
        HashSet<int>? batch = null;
        foreach (int v in vms)
        {
            int bundle = _index.Together[v];
            int soft = _index.PreferTogether[v];
            int from = sim.Location[v];
            int chosen;
            if (bundle >= 0 && (bundleTarget ??= []).TryGetValue(bundle, out int with))
            {
                // Strict: only where its group went (nowhere, if the group found no room).
                chosen = with >= 0 && sim.Free[with] >= _index.Memory[v] && !sim.Conflicts(v, with) ? with : -1;
                if (chosen < 0 && with >= 0)
                {
                    // It cannot follow after all: the group stays where it was, whole.
                    foreach (var (m, f) in bundlePlaced![bundle])
                    {
                        sim.Move(m, f);
                        bundled.Add(m);
                    }

                    bundlePlaced[bundle].Clear();
                    bundleTarget[bundle] = -1;
                }
            }
            else
            {
                long need = _index.Memory[v];
                int[]? members = null;
                if (bundle >= 0)
                {
                    batch ??= [.. vms];
                    members = [.. _index.TogetherMembers[bundle].Where(batch.Contains)];
                    need = members.Sum(m => _index.Memory[m]);
                }

                int preferred = soft >= 0 && (preferredTarget ??= []).TryGetValue(soft, out int p) ? p : -1;
                chosen = Choose(sim, v, targets, fit, need, preferred, members);
                if (bundle >= 0)
                {
                    bundleTarget![bundle] = chosen;
                }

                if (soft >= 0 && chosen >= 0)
                {
                    preferredTarget!.TryAdd(soft, chosen);
                }
            }

            if (chosen >= 0)
            {
                sim.Move(v, chosen);
                if (bundle >= 0)
                {
                    ((bundlePlaced ??= []).TryGetValue(bundle, out var placed) ? placed : bundlePlaced[bundle] = []).Add((v, from));
                }
            }
            else
            {
                (bundle >= 0 ? bundled : left).Add(v);
            }
        }

        // Re-placing cannot create memory: when the VMs left exceed the room left, do not try.
        var memory = _index.Memory;
        var budget = new CheckBudget(left.Sum(v => memory[v]) <= targets.Sum(t => Math.Max(0, sim.Free[t])) ? RepairBudget : 0);
        var unplaced = new List<UnplacedVm>();
        foreach (int v in left)
        {
            if (budget.Remaining > 0 && MakeRoom(sim, v, targets, checkpoint, budget))
            {
                continue;
            }

            int roomiest = Roomiest(sim, targets);
            unplaced.Add(new UnplacedVm(v, roomiest, roomiest < 0 ? 0 : sim.Free[roomiest]));
        }

        foreach (int v in bundled)
        {
            // A group that must stay together is not split to make room.
            int roomiest = Roomiest(sim, targets);
            unplaced.Add(new UnplacedVm(v, roomiest, roomiest < 0 ? 0 : sim.Free[roomiest]));
        }

        return unplaced;
    }

    /// <summary>
    /// The target for the VM by this fit (the first one on a tie) with <paramref name="need"/> bytes free and no rule
    /// against it (nor against any VM of <paramref name="together"/>, which go with it), or -1 when none. A target a preference speaks against (non-strict anti-affinity, or not the
    /// <paramref name="preferred"/> one) is taken only when no other qualifies.
    /// </summary>
    private static int Choose(PlacementState sim, int vm, int[] targets, Fit fit, long need, int preferred, int[]? together = null)
    {
        int chosen = -1, fallback = -1;
        foreach (int t in targets)
        {
            if (sim.Free[t] < need || sim.Conflicts(vm, t) || (together is not null && Array.Exists(together, m => sim.Conflicts(m, t))))
            {
                continue;
            }

            bool disfavoured = sim.SoftConflicts(vm, t) || (preferred >= 0 && t != preferred);
            ref int pick = ref disfavoured ? ref fallback : ref chosen;
            if (fit == Fit.First)
            {
                if (!disfavoured)
                {
                    return t;
                }

                if (pick < 0)
                {
                    pick = t;
                }

                continue;
            }

            if (pick < 0
                || (fit == Fit.Worst && sim.Free[t] > sim.Free[pick])
                || (fit == Fit.Best && sim.Free[t] < sim.Free[pick]))
            {
                pick = t;
            }
        }

        return chosen >= 0 ? chosen : fallback;
    }

    private static int Roomiest(PlacementState sim, int[] targets)
    {
        int roomiest = -1;
        foreach (int t in targets)
        {
            if (roomiest < 0 || sim.Free[t] > sim.Free[roomiest])
            {
                roomiest = t;
            }
        }

        return roomiest;
    }

    /// <summary>
    /// Room for a VM that fits nowhere, by re-placing VMs placed earlier in the same step: move one of them from a
    /// host to another, or swap a larger and a smaller one between two hosts, so that one host has the room. In
    /// one step hosts only receive VMs, so a VM that fits a host once all are placed fitted at its own turn too:
    /// the re-placed VMs simply go straight to their new host. Only VMs without placement rules are re-placed.
    /// Bounded by <paramref name="budget"/> candidate checks, so hopeless cases stay cheap.
    /// </summary>
    private bool MakeRoom(PlacementState sim, int vm, int[] targets, int checkpoint, CheckBudget budget)
    {
        var movable = MovableOn(sim, targets, checkpoint);
        var moved = MoveOneAside(sim, vm, targets, movable, budget);
        if (moved != Repair.NotFound)
        {
            return moved == Repair.Done;
        }

        return SwapTwo(sim, vm, targets, movable, budget) == Repair.Done;
    }

    /// <summary>Per target host (null for the others): the VMs placed there in this step that may move again, smallest first.</summary>
    private List<int>[] MovableOn(PlacementState sim, int[] targets, int checkpoint)
    {
        var memory = _index.Memory;
        var movable = new List<int>[_index.HostCount];
        foreach (int t in targets)
        {
            movable[t] = [];
        }

        foreach (int v in sim.MovedSince(checkpoint))
        {
            int at = sim.Location[v];
            if (at >= 0 && movable[at] is not null && !_index.HasRules(v))
            {
                movable[at].Add(v);
            }
        }

        foreach (int t in targets)
        {
            // Smallest first: move as little as possible.
            movable[t].Sort((a, b) => memory[a] != memory[b] ? memory[a].CompareTo(memory[b]) : a.CompareTo(b));
        }

        return movable;
    }

    /// <summary>How much memory host <paramref name="a"/> lacks for the VM; 0 when it has the room or cannot take it anyway.</summary>
    private long Deficit(PlacementState sim, int vm, int a)
    {
        long deficit = _index.Memory[vm] - sim.Free[a];
        return deficit <= 0 || sim.Conflicts(vm, a) ? 0 : deficit;
    }

    /// <summary>One VM x moved from host a to host b, so that the VM fits on a.</summary>
    private Repair MoveOneAside(PlacementState sim, int vm, int[] targets, List<int>[] movable, CheckBudget budget)
    {
        foreach (int a in targets)
        {
            long deficit = Deficit(sim, vm, a);
            if (deficit == 0)
            {
                continue;
            }

            foreach (int x in movable[a])
            {
                if (_index.Memory[x] < deficit)
                {
                    continue;
                }

                if (!TryHostElsewhere(sim, x, a, targets, budget, out int b))
                {
                    return Repair.OutOfBudget;
                }

                if (b >= 0)
                {
                    sim.Move(x, b);
                    sim.Move(vm, a);
                    return Repair.Done;
                }
            }
        }

        return Repair.NotFound;
    }

    /// <summary>
    /// The target other than <paramref name="a"/> with the least room that still takes VM x (best fit), -1 when none;
    /// false when the budget ran out during the search (every target checked costs one).
    /// </summary>
    private bool TryHostElsewhere(PlacementState sim, int x, int a, int[] targets, CheckBudget budget, out int b)
    {
        b = -1;
        foreach (int t in targets)
        {
            if (!budget.Spend())
            {
                return false;
            }

            if (t != a && sim.Free[t] >= _index.Memory[x] && (b < 0 || sim.Free[t] < sim.Free[b]))
            {
                b = t;
            }
        }

        return true;
    }

    /// <summary>A larger VM x on host a swapped with a smaller VM y on host b, so that the VM fits on a.</summary>
    private Repair SwapTwo(PlacementState sim, int vm, int[] targets, List<int>[] movable, CheckBudget budget)
    {
        foreach (int a in targets)
        {
            long deficit = Deficit(sim, vm, a);
            if (deficit == 0)
            {
                continue;
            }

            foreach (int b in targets)
            {
                var swapped = b == a ? Repair.NotFound : Swap(sim, vm, a, b, deficit, movable, budget);
                if (swapped != Repair.NotFound)
                {
                    return swapped;
                }
            }
        }

        return Repair.NotFound;
    }

    private Repair Swap(PlacementState sim, int vm, int a, int b, long deficit, List<int>[] movable, CheckBudget budget)
    {
        foreach (int x in movable[a])
        {
            foreach (int y in movable[b])
            {
                if (!budget.Spend())
                {
                    return Repair.OutOfBudget;
                }

                long delta = _index.Memory[x] - _index.Memory[y];
                if (delta >= deficit && sim.Free[b] >= delta)
                {
                    sim.Move(x, b);
                    sim.Move(y, a);
                    sim.Move(vm, a);
                    return Repair.Done;
                }
            }
        }

        return Repair.NotFound;
    }

    /// <summary>Candidate checks left for making room within one placement; shared by all the VMs left over.</summary>
    private sealed class CheckBudget(int remaining)
    {
        public int Remaining { get; private set; } = remaining;

        /// <summary>Spends one check; false once none was left (and from then on).</summary>
        public bool Spend() => --Remaining >= 0;
    }
}
