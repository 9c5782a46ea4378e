using static RollingReboot.Core.Planning.PlanText;

namespace RollingReboot.Core.Planning;

internal enum Strategy
{
    /// <summary>By name; the master's VMs fill the last names first, and the hosts holding them go last.</summary>
    ByName,

    /// <summary>Least loaded first: provably the order that leaves most room at every step (see <see cref="PlacementSimulator"/>).</summary>
    ByLoad,

    /// <summary>Least loaded first, but at each step the first host that fits now: for uneven pools where fragmentation bites.</summary>
    Greedy,
}

/// <summary>One host's step as simulated: its wave and the VMs that leave it.</summary>
internal sealed record StepDraft(int Host, int Wave, bool IsMaster, IReadOnlyList<VmMove> Moves);

/// <summary>
/// One simulated run: the steps in reboot order, the blockers for VMs left without room (and how many VMs), and
/// the state at its end (which the migrate-back goes on from).
/// </summary>
internal sealed record SimulationResult(
    Strategy Strategy,
    IReadOnlyList<StepDraft> Steps,
    IReadOnlyList<Blocker> Failures,
    int Unplaced,
    PlacementState State);

/// <summary>
/// Plays the whole run on a copy of the pool's memory. The master goes first: its VMs fill the hosts that will
/// be evacuated last (first fit, from the last one back), since nothing is rebooted yet. Then the other hosts,
/// one wave at a time: their VMs, largest first, go only to hosts already rebooted or not in the run (worst fit
/// for balance; best fit when worst fit leaves a VM without room).
/// Why least loaded first (<see cref="Strategy.ByLoad"/>) is the safe order: at step k the room available is
/// the pool's total free memory F minus the free memory of the hosts not yet evacuated, so step k fits (in
/// total) when C(k) + Σ_{j&gt;k} free(j) ≤ F, C being a host's usable memory. Swapping two neighbours i, j with
/// load(i) ≤ load(j) so that i goes first never raises the larger of their two left-hand sides, so ascending load
/// minimises the worst step.
/// </summary>
internal sealed class PlacementSimulator
{
    private readonly PlanIndex _index;
    private readonly HostSelection _hosts;
    private readonly VmPacker _packer;

    public PlacementSimulator(PlanIndex index, HostSelection hosts)
    {
        _index = index;
        _hosts = hosts;
        _packer = new VmPacker(index);
    }

    /// <summary>
    /// The run that leaves fewest VMs without room: by name, else least loaded first, else greedy; then in waves of
    /// up to MaxHostsDown hosts when that leaves no more VMs without room (a warning when it does).
    /// </summary>
    public SimulationResult Choose(PlanFindings findings)
    {
        var result = Simulate(Strategy.ByName, 1);
        foreach (var strategy in (Strategy[])[Strategy.ByLoad, Strategy.Greedy])
        {
            if (result.Unplaced == 0)
            {
                break;
            }

            var other = Simulate(strategy, 1);
            if (other.Unplaced < result.Unplaced)
            {
                result = other;
            }
        }

        int maxHostsDown = _index.Options.MaxHostsDown;
        if (maxHostsDown > 1)
        {
            var waves = Simulate(result.Strategy, maxHostsDown);
            if (waves.Unplaced <= result.Unplaced)
            {
                result = waves;
            }
            else
            {
                findings.Warn(new PlanWarning(
                    PlanCodes.WavesReduced,
                    Invariant($"Rebooting up to {maxHostsDown} hosts at once leaves VMs without room; the plan reboots one host at a time."),
                    "Free memory in the pool to reboot several hosts at once."));
            }
        }

        return result;
    }

    private SimulationResult Simulate(Strategy strategy, int maxHostsDown)
    {
        var sim = new PlacementState(_index);
        var log = new SimulationLog(_index, sim);
        var rebooted = new bool[_index.HostCount];
        int master = _index.Master;
        int wave = 0;

        int[] nonMaster = [.. Enumerable.Range(0, _index.HostCount).Where(h => _hosts.InRun(h) && h != master)];
        int[] tentative = strategy == Strategy.ByName
            ? nonMaster
            : [.. nonMaster.OrderBy(h => sim.Load(h)).ThenBy(h => h)];

        if (master >= 0 && _hosts.InRun(master))
        {
            wave++;
            PlaceMasterWave(sim, log, tentative, maxHostsDown, wave);
            rebooted[master] = true;
        }

        int[] order = strategy == Strategy.ByName
            ? [.. nonMaster.OrderBy(h => sim.HoldsVmFrom(h, master) ? 1 : 0).ThenBy(h => h)]
            : [.. nonMaster.OrderBy(h => sim.Load(h)).ThenBy(h => Array.IndexOf(tentative, h))];

        var remaining = new List<int>(order);
        while (remaining.Count > 0)
        {
            wave++;
            int[] targets = [.. Enumerable.Range(0, _index.HostCount).Where(h => _hosts.AlwaysTarget(h) || (rebooted[h] && _index.Hosts[h].Live))];
            int[] hosts = TakeWave(sim, strategy, remaining, targets, maxHostsDown);
            int checkpoint = sim.Checkpoint;
            var unplaced = _packer.PlaceBest(sim, hosts, targets);
            log.Record(hosts, targets.Length, wave, checkpoint, unplaced);
            foreach (int h in hosts)
            {
                rebooted[h] = true;
            }
        }

        return log.Result(strategy);
    }

    /// <summary>
    /// The master's wave, first and alone: nothing is rebooted yet, so its VMs go to the hosts that will be evacuated
    /// last (the reverse of <paramref name="tentative"/>, the order the others are expected to go in).
    /// </summary>
    private void PlaceMasterWave(PlacementState sim, SimulationLog log, int[] tentative, int maxHostsDown, int wave)
    {
        int[] later = [.. tentative.Reverse().Where(h => _index.Hosts[h].Live)];
        int[] targets = [.. later, .. _hosts.AlwaysTargets];

        // With several hosts down at once, the hosts that take the master's VMs go last together: spread the
        // VMs over as many as may go down together, so that last wave is not held up by one host carrying them all.
        int[] spread = maxHostsDown > 1 ? [.. later.Take(maxHostsDown)] : [];
        int checkpoint = sim.Checkpoint;
        var unplaced = PlaceMastersVms(sim, targets, [.. _hosts.AlwaysTargets], spread);
        log.Record([_index.Master], targets.Length, wave, checkpoint, unplaced);
    }

    /// <param name="finalTargets">
    /// Hosts that never reboot in this run (out of it, live, enabled). A VM that fits on one of them goes there
    /// (worst fit, to spread them) and moves once; only the VMs that fit on none of them go to
    /// <paramref name="targets"/> (first fit), hosts that reboot later, and move again.
    /// </param>
    /// <param name="spread">Hosts rebooting later that take the master's VMs evenly (worst fit) before first fit.</param>
    private List<UnplacedVm> PlaceMastersVms(PlacementState sim, int[] targets, int[] finalTargets, int[] spread)
    {
        int[] pending = sim.VmsOn([_index.Master]);
        if (finalTargets.Length == 0 && spread.Length == 0)
        {
            return _packer.Place(sim, pending, targets, Fit.First);
        }

        if (finalTargets.Length > 0)
        {
            pending = [.. _packer.Place(sim, pending, finalTargets, Fit.Worst).Select(u => u.Vm)];
        }

        if (pending.Length > 0 && spread.Length > 0)
        {
            pending = [.. _packer.Place(sim, pending, spread, Fit.Worst).Select(u => u.Vm)];
        }

        // The final targets come first again: whatever still fits on one of them goes there.
        return pending.Length == 0 ? [] : _packer.Place(sim, pending, [.. finalTargets, .. targets.Except(finalTargets)], Fit.First);
    }

    /// <summary>
    /// The next wave, taken off the front of <paramref name="remaining"/>: its first host, then as many of the next
    /// (up to <paramref name="maxHostsDown"/>) as still let every VM of the wave find room.
    /// </summary>
    private int[] TakeWave(PlacementState sim, Strategy strategy, List<int> remaining, int[] targets, int maxHostsDown)
    {
        if (strategy == Strategy.Greedy)
        {
            // The first host, least loaded first, whose VMs all fit now; the least loaded when none does.
            int next = remaining.FindIndex(h => _packer.Fits(sim, [h], targets));
            if (next > 0)
            {
                int h = remaining[next];
                remaining.RemoveAt(next);
                remaining.Insert(0, h);
            }
        }

        int size = 1;
        while (size < maxHostsDown && size < remaining.Count && _packer.Fits(sim, [.. remaining.Take(size + 1)], targets))
        {
            size++;
        }

        int[] hosts = [.. remaining.Take(size)];
        remaining.RemoveRange(0, size);
        return hosts;
    }

    /// <summary>What one simulation has produced so far; filled wave by wave, then frozen into its result.</summary>
    private sealed class SimulationLog
    {
        private readonly PlanIndex _index;
        private readonly PlacementState _sim;
        private readonly List<StepDraft> _steps = [];
        private readonly List<Blocker> _failures = [];
        private int _unplaced;

        public SimulationLog(PlanIndex index, PlacementState sim)
        {
            _index = index;
            _sim = sim;
        }

        /// <summary>The steps of a wave just placed (moves since the checkpoint), and its VMs left without room.</summary>
        public void Record(int[] sources, int targetCount, int wave, int checkpoint, List<UnplacedVm> unplaced)
        {
            foreach (int h in sources)
            {
                _steps.Add(new StepDraft(h, wave, h == _index.Master, [.. _sim.NetMovesSince(checkpoint).Where(m => m.From == h)]));
            }

            _unplaced += unplaced.Count;
            foreach (int h in sources)
            {
                // A VM without room stays where it is, on its source host.
                _failures.AddRange(PlanChecks.UnplacedBlockers(_index, h, [.. unplaced.Where(u => _sim.Location[u.Vm] == h)], targetCount));
            }

            // A host rebooted with VMs on it shuts them down: they take no memory for the rest of the run, so one
            // shortage shows as one blocker instead of spilling into every later step.
            foreach (var u in unplaced)
            {
                _sim.Halt(u.Vm);
            }
        }

        public SimulationResult Result(Strategy strategy) => new(strategy, _steps, _failures, _unplaced, _sim);
    }
}
