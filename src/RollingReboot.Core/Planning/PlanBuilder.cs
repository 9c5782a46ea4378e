using System.Globalization;
using RollingReboot.Core.Pool;

namespace RollingReboot.Core.Planning;

/// <summary>
/// The work behind <see cref="EvacuationPlanner.Plan"/>. Hosts and VMs are put in a canonical order (name as an
/// operator reads it, then uuid) and handled by index from then on, so no result depends on the order of the
/// snapshot's lists or on hashing.
/// </summary>
internal sealed class PlanBuilder
{
    private const int MaxNamesListed = 10;

    // Candidate checks allowed to make room in one placement (see MakeRoom).
    private const int RepairBudget = 200_000;

    private readonly PoolSnapshot _pool;
    private readonly PlanOptions _options;
    private readonly PlanConstraints _constraints;

    private readonly HostState[] _hosts;
    private readonly int _master;

    // Running guests resident on a known host, in canonical order.
    private readonly VmState[] _vms;
    private readonly int[] _home;
    private readonly long[] _memory;
    private readonly int[][] _groups;
    private readonly string[] _groupNames;

    private readonly bool[] _inRun;
    private readonly string[] _reason;

    // Hosts not in the run that can take VMs at any time (live and enabled): they never reboot.
    private readonly bool[] _alwaysTarget;

    private readonly List<Blocker> _blockers = [];
    private readonly List<PlanWarning> _warnings = [];

    public PlanBuilder(PoolSnapshot pool, PlanOptions options, PlanConstraints constraints)
    {
        _pool = pool;
        _options = options;
        _constraints = constraints;

        _hosts = [.. pool.Hosts
            .GroupBy(h => h.Uuid, StringComparer.Ordinal).Select(g => g.First())
            .OrderBy(h => h.Name, NaturalNameComparer.Instance).ThenBy(h => h.Uuid, StringComparer.Ordinal)];
        var hostIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < _hosts.Length; i++)
        {
            hostIndex[_hosts[i].Uuid] = i;
        }

        _master = hostIndex.TryGetValue(pool.MasterUuid, out int m) ? m : -1;

        _vms = [.. pool.Vms
            .Where(v => v.IsRunningGuest && v.ResidentOnUuid is not null && hostIndex.ContainsKey(v.ResidentOnUuid))
            .GroupBy(v => v.Uuid, StringComparer.Ordinal).Select(g => g.First())
            .OrderBy(v => v.Name, NaturalNameComparer.Instance).ThenBy(v => v.Uuid, StringComparer.Ordinal)];
        _home = [.. _vms.Select(v => hostIndex[v.ResidentOnUuid!])];
        _memory = [.. _vms.Select(v => Math.Max(0, v.MemoryBytes))];

        (_groups, _groupNames) = ResolveGroups();

        _inRun = new bool[_hosts.Length];
        _reason = new string[_hosts.Length];
        _alwaysTarget = new bool[_hosts.Length];
    }

    private enum Strategy
    {
        /// <summary>By name; the master's VMs fill the last names first, and the hosts holding them go last.</summary>
        ByName,

        /// <summary>Least loaded first: provably the order that leaves most room at every step (see <see cref="Simulate"/>).</summary>
        ByLoad,

        /// <summary>Least loaded first, but at each step the first host that fits now: for uneven pools where fragmentation bites.</summary>
        Greedy,
    }

    private enum Fit
    {
        First,
        Worst,
        Best,
    }

    public Plan Build()
    {
        DecideHosts();
        CheckPool();
        CheckVms();
        CheckExistingAntiAffinity();

        var result = Simulate(Strategy.ByName, 1);
        if (result.Unplaced > 0)
        {
            var byLoad = Simulate(Strategy.ByLoad, 1);
            if (byLoad.Unplaced < result.Unplaced)
            {
                result = byLoad;
            }

            if (result.Unplaced > 0)
            {
                var greedy = Simulate(Strategy.Greedy, 1);
                if (greedy.Unplaced < result.Unplaced)
                {
                    result = greedy;
                }
            }
        }

        if (_options.MaxHostsDown > 1)
        {
            var waves = Simulate(result.Strategy, _options.MaxHostsDown);
            if (waves.Unplaced <= result.Unplaced)
            {
                result = waves;
            }
            else
            {
                _warnings.Add(new PlanWarning(
                    PlanCodes.WavesReduced,
                    Invariant($"Rebooting up to {_options.MaxHostsDown} hosts at once leaves VMs without room; the plan reboots one host at a time."),
                    "Free memory in the pool to reboot several hosts at once."));
            }
        }

        _blockers.AddRange(result.Failures);

        var returns = _options.ReturnVms ? PlanReturn(result) : [];
        return Assemble(result, returns);
    }

    private (int[][] Groups, string[] Names) ResolveGroups()
    {
        var perVm = new List<string>[_vms.Length];
        var all = new SortedSet<string>(StringComparer.Ordinal);
        var map = _constraints.AntiAffinityGroups;
        for (int v = 0; v < _vms.Length; v++)
        {
            var names = new List<string>();
            if (map.TryGetValue(_vms[v].Uuid, out var byUuid))
            {
                names.AddRange(byUuid);
            }

            if (map.TryGetValue(_vms[v].Name, out var byName))
            {
                names.AddRange(byName);
            }

            perVm[v] = names;
            all.UnionWith(names);
        }

        string[] groupNames = [.. all];
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int g = 0; g < groupNames.Length; g++)
        {
            ids[groupNames[g]] = g;
        }

        var groups = new int[_vms.Length][];
        for (int v = 0; v < _vms.Length; v++)
        {
            groups[v] = [.. perVm[v].Select(n => ids[n]).Distinct().Order()];
        }

        return (groups, groupNames);
    }

    // ---------------------------------------------------------------- host decisions and checks

    private void DecideHosts()
    {
        if (_master < 0)
        {
            _blockers.Add(new Blocker(
                PlanCodes.UnknownMaster,
                $"The pool's master ({_pool.MasterUuid}) is not among its hosts.",
                "Read the pool again; if it persists, check the pool with xe host-list and xe pool-list."));
        }

        var ignored = ResolveHostNames(_options.IgnoreHosts, "ignore");
        var included = ResolveHostNames(_options.IncludeHosts, "include");
        var rebooted = new HashSet<string>(_constraints.AlreadyRebootedHosts, StringComparer.Ordinal);

        for (int h = 0; h < _hosts.Length; h++)
        {
            var host = _hosts[h];
            bool notIncluded = _options.IncludeHosts.Count > 0 && !included[h];
            string? skip =
                rebooted.Contains(host.Uuid) ? "already rebooted in this run"
                : ignored[h] ? "ignored by operator"
                : notIncluded ? "not in the hosts to include"
                : !host.Enabled ? "disabled by operator, left alone"
                : _options.OnlyNeedingReboot && !host.NeedsReboot ? "no reboot needed"
                : null;

            _inRun[h] = skip is null;
            _reason[h] = skip is null ? RebootReason(h) : skip + PendingSuffix(host);
            _alwaysTarget[h] = !_inRun[h] && host.Live && host.Enabled;

            bool operatorExcluded = ignored[h] || notIncluded || !host.Enabled;
            if (!host.Live && !operatorExcluded)
            {
                _blockers.Add(new Blocker(
                    PlanCodes.HostNotLive,
                    $"Host {host.Name} is not live (down, or its toolstack does not answer): the pool is already missing a host.",
                    $"Bring {host.Name} back first, or leave it out with --ignore-hosts {host.Name} to go on without it.",
                    Host: host.Name));
            }
            else if (!host.Live)
            {
                _warnings.Add(new PlanWarning(
                    PlanCodes.HostNotLiveIgnored,
                    $"Host {host.Name} is not live; it is left out of the run and takes no VMs.",
                    $"Bring {host.Name} back and reboot it in a later run if it needs one."));
            }

            if (_inRun[h] && host.CurrentOperations.Count > 0)
            {
                _blockers.Add(new Blocker(
                    PlanCodes.HostBusy,
                    $"Host {host.Name} has an operation in progress ({string.Join(", ", host.CurrentOperations.Order(StringComparer.Ordinal))}).",
                    "Wait for it to finish (xe task-list), then plan again.",
                    Host: host.Name));
            }

            if (!_inRun[h] && !host.Enabled && host.NeedsReboot && !rebooted.Contains(host.Uuid))
            {
                _warnings.Add(new PlanWarning(
                    PlanCodes.HostDisabledPending,
                    $"Host {host.Name} is disabled and still needs a reboot{PendingSuffix(host)}; it is left alone.",
                    $"Enable {host.Name} (xe host-enable) to include it, or reboot it by hand."));
            }
        }
    }

    private bool[] ResolveHostNames(IReadOnlyList<string> names, string list)
    {
        var found = new bool[_hosts.Length];
        foreach (var name in names.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
        {
            bool any = false;
            for (int h = 0; h < _hosts.Length; h++)
            {
                if (_hosts[h].Uuid == name)
                {
                    found[h] = any = true;
                }
            }

            if (!any)
            {
                for (int h = 0; h < _hosts.Length; h++)
                {
                    if (_hosts[h].Name == name)
                    {
                        found[h] = any = true;
                    }
                }
            }

            if (!any)
            {
                _blockers.Add(new Blocker(
                    PlanCodes.UnknownHost,
                    $"Host '{name}' in the hosts to {list} is not in pool {_pool.Name}.",
                    $"Check the name; the pool's hosts are: {string.Join(", ", _hosts.Select(x => x.Name))}.",
                    Host: name));
            }
        }

        return found;
    }

    private string RebootReason(int h)
    {
        var host = _hosts[h];
        var parts = new List<string>();
        if (h == _master)
        {
            parts.Add("pool master, rebooted first");
        }

        if (host.PendingGuidances.Count > 0)
        {
            parts.Add("pending guidance: " + string.Join(", ", host.PendingGuidances.Order(StringComparer.Ordinal)));
        }

        if (host.UpdatesRequiringReboot.Count > 0)
        {
            parts.Add(Invariant($"{host.UpdatesRequiringReboot.Count} update(s) need a reboot") + UpdateList(host));
        }

        if (!host.NeedsReboot)
        {
            parts.Add("no reboot pending, rebooted as asked");
        }

        return string.Join("; ", parts);
    }

    private static string UpdateList(HostState host) =>
        host.UpdatesRequiringReboot.Count <= 3
            ? " (" + string.Join(", ", host.UpdatesRequiringReboot.Order(StringComparer.Ordinal)) + ")"
            : string.Empty;

    private static string PendingSuffix(HostState host)
    {
        var parts = new List<string>();
        if (host.PendingGuidances.Count > 0)
        {
            parts.Add("pending guidance: " + string.Join(", ", host.PendingGuidances.Order(StringComparer.Ordinal)));
        }

        if (host.UpdatesRequiringReboot.Count > 0)
        {
            parts.Add(Invariant($"{host.UpdatesRequiringReboot.Count} update(s) need a reboot"));
        }

        return parts.Count == 0 ? string.Empty : " (" + string.Join("; ", parts) + ")";
    }

    private void CheckPool()
    {
        if (_pool.CurrentOperations.Count > 0)
        {
            _blockers.Add(new Blocker(
                PlanCodes.PoolBusy,
                $"Pool {_pool.Name} has an operation in progress ({string.Join(", ", _pool.CurrentOperations.Order(StringComparer.Ordinal))}).",
                "Wait for it to finish (xe task-list), then plan again."));
        }

        var ha = _pool.Ha;
        if (ha.Enabled)
        {
            int timeout = ha.TimeoutSeconds ?? 60;
            if (timeout < 120)
            {
                _warnings.Add(new PlanWarning(
                    PlanCodes.HaTimeoutShort,
                    Invariant($"HA is enabled with a timeout of {timeout} s (under 120 s): a host busy with migrations can miss heartbeats and be fenced. HA is off during the run and restored as it was."),
                    "Consider a longer HA timeout (e.g. 180 s: xe pool-ha-enable ... ha-config:timeout=180) after the run."));
            }

            int live = _hosts.Count(x => x.Live);
            if (_hosts.Length < 3)
            {
                _warnings.Add(new PlanWarning(
                    PlanCodes.HaFewHosts,
                    Invariant($"HA is enabled on a pool of {_hosts.Length} host(s) ({live} live): with one host rebooting there is no margin left for a failure."),
                    "HA is switched off during the run and restored after; consider whether HA is useful on so small a pool."));
            }
        }

        var protectedVms = _vms.Where(v => !string.IsNullOrEmpty(v.HaRestartPriority)).Select(v => v.Name).ToList();
        if (protectedVms.Count > 0)
        {
            _warnings.Add(new PlanWarning(
                PlanCodes.VmHaProtected,
                Invariant($"{protectedVms.Count} running VM(s) have an HA restart priority, so XenServer HA would restart them while CloudStack manages them too: {NameList(protectedVms)}. HA is off during the run."),
                "Clear the restart priority of CloudStack-managed VMs (xe vm-param-set uuid=... ha-restart-priority=)."));
        }
    }

    private void CheckVms()
    {
        var shared = new Dictionary<string, SrInfo>(StringComparer.Ordinal);
        foreach (var sr in _pool.Srs)
        {
            shared.TryAdd(sr.Uuid, sr);
        }

        for (int v = 0; v < _vms.Length; v++)
        {
            if (!_inRun[_home[v]])
            {
                continue;
            }

            var vm = _vms[v];
            string host = _hosts[_home[v]].Name;
            var codes = new HashSet<string>(StringComparer.Ordinal);

            var localDisks = vm.DiskSrUuids.Where(sr => !IsShared(sr)).Distinct(StringComparer.Ordinal).Select(SrName).Order(StringComparer.Ordinal).ToList();
            if (localDisks.Count > 0)
            {
                Add(PlanCodes.VmRequiresSr,
                    $"VM {vm.Name} on {host} has a disk on {Plural(localDisks.Count, "SR")} {string.Join(", ", localDisks)}, not shared: it cannot be live-migrated within the pool.",
                    $"Move its disks to a shared SR (storage live migration), or shut {vm.Name} down for the run, or leave {host} out with --ignore-hosts {host}.");
            }

            var localCds = vm.CdSrUuids.Where(sr => !IsShared(sr)).Distinct(StringComparer.Ordinal).Select(SrName).Order(StringComparer.Ordinal).ToList();
            if (localCds.Count > 0)
            {
                Add(PlanCodes.VmRequiresSr,
                    $"VM {vm.Name} on {host} has a CD inserted from {Plural(localCds.Count, "ISO SR")} {string.Join(", ", localCds)}, not shared: it cannot be live-migrated within the pool.",
                    $"Eject the CD (xe vm-cd-eject vm={vm.Name}) or move the ISO to a shared ISO library.");
            }

            if (!vm.PvDrivers)
            {
                Add(PlanCodes.VmLacksFeature,
                    $"VM {vm.Name} on {host} has no PV drivers (guest tools): XenServer cannot live-migrate it.",
                    $"Install the XenServer VM Tools in {vm.Name}, or shut it down for the run.");
            }

            if (vm.HasPci)
            {
                Add(PlanCodes.VmHasPci,
                    $"VM {vm.Name} on {host} has a PCI device passed through: it cannot be live-migrated.",
                    $"Detach the PCI device or shut {vm.Name} down for the run, or leave {host} out with --ignore-hosts {host}.");
            }

            if (vm.HasVgpu)
            {
                Add(PlanCodes.VmHasVgpu,
                    $"VM {vm.Name} on {host} has a vGPU: it cannot be live-migrated to just any host.",
                    $"Shut {vm.Name} down for the run, or leave {host} out with --ignore-hosts {host}.");
            }

            if (vm.HasVusb)
            {
                Add(PlanCodes.VmHasVusb,
                    $"VM {vm.Name} on {host} has a USB device passed through: it cannot be live-migrated.",
                    $"Unplug the USB device from {vm.Name} or shut it down for the run.");
            }

            if (_constraints.ExtraVmBlockers.TryGetValue(vm.Uuid, out var extra) && !codes.Contains(extra.Code))
            {
                Add(extra.Code, extra.Message, extra.Fix);
            }

            if (vm.CurrentOperations.Count > 0)
            {
                _warnings.Add(new PlanWarning(
                    PlanCodes.VmBusy,
                    $"VM {vm.Name} on {host} has an operation in progress ({string.Join(", ", vm.CurrentOperations.Order(StringComparer.Ordinal))}).",
                    "Let it finish before the run; its migration waits for it otherwise."));
            }

            void Add(string code, string message, string fix)
            {
                codes.Add(code);
                _blockers.Add(new Blocker(code, message, fix, vm.Name, host));
            }
        }

        bool IsShared(string uuid) => shared.TryGetValue(uuid, out var sr) && sr.Shared;

        string SrName(string uuid) => shared.TryGetValue(uuid, out var sr) ? sr.Name : uuid;
    }

    private void CheckExistingAntiAffinity()
    {
        if (_groupNames.Length == 0)
        {
            return;
        }

        var together = new SortedDictionary<(int Host, int Group), List<string>>();
        for (int v = 0; v < _vms.Length; v++)
        {
            foreach (int g in _groups[v])
            {
                if (!together.TryGetValue((_home[v], g), out var names))
                {
                    together[(_home[v], g)] = names = [];
                }

                names.Add(_vms[v].Name);
            }
        }

        foreach (var ((host, group), members) in together)
        {
            if (members.Count > 1)
            {
                _warnings.Add(new PlanWarning(
                    PlanCodes.AntiAffinityAlreadyBroken,
                    $"VMs {NameList(members)} of anti-affinity group {_groupNames[group]} already share host {_hosts[host].Name}; the plan never puts VMs of one group together when it moves them.",
                    "Move one of them to another host (CloudStack: migrate the VM) to restore the group's spread."));
            }
        }
    }

    // ---------------------------------------------------------------- placement

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
    private SimulationResult Simulate(Strategy strategy, int maxHostsDown)
    {
        var sim = new PlacementState(this);
        var result = new SimulationResult(strategy);
        var rebooted = new bool[_hosts.Length];
        int wave = 0;

        int[] nonMaster = [.. Enumerable.Range(0, _hosts.Length).Where(h => _inRun[h] && h != _master)];
        int[] tentative = strategy == Strategy.ByName
            ? nonMaster
            : [.. nonMaster.OrderBy(h => sim.Load(h)).ThenBy(h => h)];

        if (_master >= 0 && _inRun[_master])
        {
            wave++;
            int[] later = [.. tentative.Reverse().Where(h => _hosts[h].Live)];
            int[] targets = [.. later, .. AlwaysTargets()];

            // With several hosts down at once, the hosts that take the master's VMs go last together: spread the
            // VMs over as many as may go down together, so that last wave is not held up by one host carrying them all.
            int[] spread = maxHostsDown > 1 ? [.. later.Take(maxHostsDown)] : [];
            PlaceWave(sim, result, [_master], targets, wave, firstFit: true, finalTargets: [.. AlwaysTargets()], spread: spread);
            rebooted[_master] = true;
        }

        int[] order = strategy == Strategy.ByName
            ? [.. nonMaster.OrderBy(h => sim.HoldsVmFrom(h, _master) ? 1 : 0).ThenBy(h => h)]
            : [.. nonMaster.OrderBy(h => sim.Load(h)).ThenBy(h => Array.IndexOf(tentative, h))];

        var remaining = new List<int>(order);
        while (remaining.Count > 0)
        {
            wave++;
            int[] targets = [.. Enumerable.Range(0, _hosts.Length).Where(h => _alwaysTarget[h] || (rebooted[h] && _hosts[h].Live))];
            if (strategy == Strategy.Greedy)
            {
                // The first host, least loaded first, whose VMs all fit now; the least loaded when none does.
                int next = remaining.FindIndex(h => Fits(sim, [h], targets));
                if (next > 0)
                {
                    int h = remaining[next];
                    remaining.RemoveAt(next);
                    remaining.Insert(0, h);
                }
            }

            int size = 1;
            while (size < maxHostsDown && size < remaining.Count && Fits(sim, [.. remaining.Take(size + 1)], targets))
            {
                size++;
            }

            int[] hosts = [.. remaining.Take(size)];
            remaining.RemoveRange(0, size);
            PlaceWave(sim, result, hosts, targets, wave, firstFit: false);
            foreach (int h in hosts)
            {
                rebooted[h] = true;
            }
        }

        result.State = sim;
        return result;
    }

    /// <summary>Whether every VM on these hosts finds room on the targets; leaves the state as it was.</summary>
    private bool Fits(PlacementState sim, int[] sources, int[] targets)
    {
        int checkpoint = sim.Checkpoint;
        int unplaced = PlaceBest(sim, sources, targets).Count;
        sim.Rollback(checkpoint);
        return unplaced == 0;
    }

    private IEnumerable<int> AlwaysTargets() => Enumerable.Range(0, _hosts.Length).Where(h => _alwaysTarget[h]);

    /// <param name="finalTargets">
    /// For the master's wave: hosts that never reboot in this run (out of it, live, enabled). A VM that fits on one
    /// of them goes there (worst fit, to spread them) and moves once; only the VMs that fit on none of them go to
    /// <paramref name="targets"/> (first fit), hosts that reboot later, and move again.
    /// </param>
    /// <param name="spread">For the master's wave: hosts rebooting later that take its VMs evenly (worst fit) before first fit.</param>
    private void PlaceWave(PlacementState sim, SimulationResult result, int[] sources, int[] targets, int wave, bool firstFit, int[]? finalTargets = null, int[]? spread = null)
    {
        int checkpoint = sim.Checkpoint;
        List<Unplaced> unplaced;
        if (finalTargets is { Length: > 0 } || spread is { Length: > 0 })
        {
            int[] final = finalTargets ?? [];
            int[] pending = sim.VmsOn(sources);
            if (final.Length > 0)
            {
                pending = [.. Place(sim, pending, final, Fit.Worst).Select(u => u.Vm)];
            }

            if (pending.Length > 0 && spread is { Length: > 0 })
            {
                pending = [.. Place(sim, pending, spread, Fit.Worst).Select(u => u.Vm)];
            }

            // The final targets come first again: whatever still fits on one of them goes there.
            unplaced = pending.Length == 0 ? [] : Place(sim, pending, [.. final, .. targets.Except(final)], Fit.First);
        }
        else
        {
            unplaced = firstFit ? Place(sim, sim.VmsOn(sources), targets, Fit.First) : PlaceBest(sim, sources, targets);
        }

        foreach (int h in sources)
        {
            result.Steps.Add(new StepDraft(h, wave, h == _master, [.. Collapse(sim.MovesSince(checkpoint)).Where(m => m.From == h)]));
        }

        result.Unplaced += unplaced.Count;
        foreach (int h in sources)
        {
            // A VM without room stays where it is, on its source host.
            ReportUnplaced(result, h, [.. unplaced.Where(u => sim.Location[u.Vm] == h)], targets.Length);
        }

        // A host rebooted with VMs on it shuts them down: they take no memory for the rest of the run, so one
        // shortage shows as one blocker instead of spilling into every later step.
        foreach (var u in unplaced)
        {
            sim.Halt(u.Vm);
        }
    }

    /// <summary>One migration per VM: a VM re-placed within a step goes from where it was straight to where it ends.</summary>
    private static List<Move> Collapse(IEnumerable<Move> moves)
    {
        var order = new List<int>();
        var first = new Dictionary<int, Move>();
        var last = new Dictionary<int, int>();
        foreach (var m in moves)
        {
            if (first.TryAdd(m.Vm, m))
            {
                order.Add(m.Vm);
            }

            last[m.Vm] = m.To;
        }

        return [.. order.Select(v => first[v] with { To = last[v] }).Where(m => m.From != m.To)];
    }

    private List<Unplaced> PlaceBest(PlacementState sim, int[] sources, int[] targets)
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

    private List<Unplaced> Place(PlacementState sim, int[] vms, int[] targets, Fit fit)
    {
        int checkpoint = sim.Checkpoint;
        var left = new List<int>();
        foreach (int v in vms)
        {
            long need = _memory[v];
            int chosen = -1;
            foreach (int t in targets)
            {
                if (sim.Free[t] < need || sim.Conflicts(v, t))
                {
                    continue;
                }

                if (fit == Fit.First)
                {
                    chosen = t;
                    break;
                }

                if (chosen < 0
                    || (fit == Fit.Worst && sim.Free[t] > sim.Free[chosen])
                    || (fit == Fit.Best && sim.Free[t] < sim.Free[chosen]))
                {
                    chosen = t;
                }
            }

            if (chosen >= 0)
            {
                sim.Move(v, chosen);
            }
            else
            {
                left.Add(v);
            }
        }

        // Re-placing cannot create memory: when the VMs left exceed the room left, do not try.
        int budget = left.Sum(v => _memory[v]) <= targets.Sum(t => Math.Max(0, sim.Free[t])) ? RepairBudget : 0;
        var unplaced = new List<Unplaced>();
        foreach (int v in left)
        {
            if (budget > 0 && MakeRoom(sim, v, targets, checkpoint, ref budget))
            {
                continue;
            }

            int roomiest = -1;
            foreach (int t in targets)
            {
                if (roomiest < 0 || sim.Free[t] > sim.Free[roomiest])
                {
                    roomiest = t;
                }
            }

            unplaced.Add(new Unplaced(v, roomiest, roomiest < 0 ? 0 : sim.Free[roomiest]));
        }

        return unplaced;
    }

    /// <summary>
    /// Room for a VM that fits nowhere, by re-placing VMs placed earlier in the same step: move one of them from a
    /// host to another, or swap a larger and a smaller one between two hosts, so that one host has the room. In
    /// one step hosts only receive VMs, so a VM that fits a host once all are placed fitted at its own turn too:
    /// the re-placed VMs simply go straight to their new host. Only VMs without anti-affinity groups are re-placed.
    /// Bounded by <paramref name="budget"/> candidate checks, so hopeless cases stay cheap.
    /// </summary>
    private bool MakeRoom(PlacementState sim, int vm, int[] targets, int checkpoint, ref int budget)
    {
        long need = _memory[vm];
        var movable = new List<int>[_hosts.Length];
        foreach (int t in targets)
        {
            movable[t] = [];
        }

        foreach (int v in sim.MovedSince(checkpoint))
        {
            int at = sim.Location[v];
            if (at >= 0 && movable[at] is not null && _groups[v].Length == 0)
            {
                movable[at].Add(v);
            }
        }

        foreach (int t in targets)
        {
            // Smallest first: move as little as possible.
            movable[t].Sort((a, b) => _memory[a] != _memory[b] ? _memory[a].CompareTo(_memory[b]) : a.CompareTo(b));
        }

        // One VM moved from host a to host b.
        foreach (int a in targets)
        {
            long deficit = need - sim.Free[a];
            if (deficit <= 0 || sim.Conflicts(vm, a))
            {
                continue;
            }

            foreach (int x in movable[a])
            {
                if (_memory[x] < deficit)
                {
                    continue;
                }

                int b = -1;
                foreach (int t in targets)
                {
                    if (--budget < 0)
                    {
                        return false;
                    }

                    if (t != a && sim.Free[t] >= _memory[x] && (b < 0 || sim.Free[t] < sim.Free[b]))
                    {
                        b = t;
                    }
                }

                if (b >= 0)
                {
                    sim.Move(x, b);
                    sim.Move(vm, a);
                    return true;
                }
            }
        }

        // A larger VM x on a swapped with a smaller VM y on b.
        foreach (int a in targets)
        {
            long deficit = need - sim.Free[a];
            if (deficit <= 0 || sim.Conflicts(vm, a))
            {
                continue;
            }

            foreach (int b in targets)
            {
                if (b == a)
                {
                    continue;
                }

                foreach (int x in movable[a])
                {
                    foreach (int y in movable[b])
                    {
                        if (--budget < 0)
                        {
                            return false;
                        }

                        long delta = _memory[x] - _memory[y];
                        if (delta >= deficit && sim.Free[b] >= delta)
                        {
                            sim.Move(x, b);
                            sim.Move(y, a);
                            sim.Move(vm, a);
                            return true;
                        }
                    }
                }
            }
        }

        return false;
    }

    private void ReportUnplaced(SimulationResult result, int source, List<Unplaced> unplaced, int targetCount)
    {
        if (unplaced.Count == 0)
        {
            return;
        }

        string host = _hosts[source].Name;
        var noRoom = unplaced.Where(u => u.Roomiest < 0 || u.RoomiestFree < _memory[u.Vm]).ToList();
        if (noRoom.Count > 0)
        {
            var first = noRoom[0];
            string vm = _vms[first.Vm].Name;
            string all = noRoom.Count > 1
                ? $"; {noRoom.Count} VMs ({Units.Memory(noRoom.Sum(u => _memory[u.Vm]))}) in all find no room"
                : string.Empty;
            string message = targetCount == 0
                ? $"Host {host} cannot be emptied: every other host still has to reboot after it (or is down or disabled), so VM {vm} ({Units.Memory(_memory[first.Vm])}) has nowhere to go{all}."
                : $"Host {host} cannot be emptied: VM {vm} needs {Units.Memory(_memory[first.Vm])} but the roomiest host already rebooted or out of the run, {_hosts[first.Roomiest].Name}, has {Units.Memory(first.RoomiestFree)} free ({Units.Memory(_memory[first.Vm] - first.RoomiestFree)} short){all}.";
            result.Failures.Add(new Blocker(
                PlanCodes.Capacity,
                message,
                targetCount == 0
                    ? $"Enable or include another host that can take the VMs (e.g. the master), or leave {host} out with --ignore-hosts {host}."
                    : $"Free memory in the pool (shut down or remove VMs, or add a host), or leave {host} out with --ignore-hosts {host}.",
                vm,
                host));
        }

        foreach (var u in unplaced.Where(u => u.Roomiest >= 0 && u.RoomiestFree >= _memory[u.Vm]))
        {
            string vm = _vms[u.Vm].Name;
            string groups = string.Join(", ", _groups[u.Vm].Select(g => _groupNames[g]));
            result.Failures.Add(new Blocker(
                PlanCodes.AntiAffinity,
                $"VM {vm} (anti-affinity group {groups}) cannot leave {host}: every host with room for it already runs a VM of its group.",
                $"Stop one VM of group {groups} for the run, add a host, or leave {host} out with --ignore-hosts {host}.",
                vm,
                host));
        }
    }

    // ---------------------------------------------------------------- migrate-back and assembly

    private List<PlannedMigration> PlanReturn(SimulationResult result)
    {
        var sim = result.State!;
        var returns = new List<PlannedMigration>();

        // Hosts in reverse reboot order: the last host evacuated is empty at the end, and each return frees room
        // for the next. A VM that finds no room yet is tried again after the others, until nothing changes.
        var pending = result.Steps.AsEnumerable().Reverse()
            .SelectMany(step => Enumerable.Range(0, _vms.Length)
                .Where(v => _home[v] == step.Host && sim.Location[v] != step.Host && sim.Location[v] != PlacementState.Halted)
                .OrderByDescending(v => _memory[v]).ThenBy(v => v))
            .ToList();
        bool progress = true;
        while (pending.Count > 0 && progress)
        {
            progress = false;
            var later = new List<int>();
            foreach (int v in pending)
            {
                int home = _home[v], from = sim.Location[v];
                if (sim.Free[home] < _memory[v] || sim.Conflicts(v, home))
                {
                    later.Add(v);
                    continue;
                }

                sim.Move(v, home);
                returns.Add(Migration(v, from, home));
                progress = true;
            }

            pending = later;
        }

        var stayed = pending.Select(v => _vms[v].Name).ToList();
        if (stayed.Count > 0)
        {
            _warnings.Add(new PlanWarning(
                PlanCodes.ReturnSkipped,
                Invariant($"{stayed.Count} VM(s) cannot go back to their original host after the run (no room or anti-affinity then): {NameList(stayed)}."),
                "They stay where the run put them; move them by hand later if needed."));
        }

        return returns;
    }

    private Plan Assemble(SimulationResult result, List<PlannedMigration> returns)
    {
        var model = _options.MigrationModel;
        var steps = new List<PlanStep>();
        double start = 0;
        int index = 0;
        foreach (var wave in result.Steps.GroupBy(s => s.Wave).OrderBy(g => g.Key))
        {
            var drafts = wave.ToList();
            var migrations = drafts.Select(d => d.Moves.Select(m => Migration(m.Vm, m.From, m.To)).ToList()).ToList();
            var all = migrations.SelectMany(m => m).ToList();
            var done = PlanEstimator.CompletionSeconds(all, _options);
            double waveSeconds = 0;
            int offset = 0;
            for (int k = 0; k < drafts.Count; k++)
            {
                double evacuation = 0;
                for (int j = 0; j < migrations[k].Count; j++)
                {
                    evacuation = Math.Max(evacuation, done[offset + j]);
                }

                offset += migrations[k].Count;
                double estimated = PlanEstimator.StepSeconds(evacuation, _options);
                waveSeconds = Math.Max(waveSeconds, estimated);
                var draft = drafts[k];
                steps.Add(new PlanStep(++index, draft.Wave, _hosts[draft.Host].Uuid, _hosts[draft.Host].Name, draft.IsMaster, migrations[k], evacuation, estimated)
                {
                    StartSeconds = start,
                });
            }

            start += waveSeconds;
        }

        double returnSeconds = returns.Count > 0 ? PlanEstimator.EvacuationSeconds(returns, _options) : 0;
        var everything = steps.SelectMany(s => s.Migrations).Concat(returns).ToList();
        var estimate = new PlanEstimate(start + returnSeconds, everything.Count, everything.Sum(m => model.BytesMoved(m.MemoryBytes)))
        {
            MemoryBytes = everything.Sum(m => m.MemoryBytes),
            ReturnSeconds = returnSeconds,
        };

        var decisions = new List<HostDecision>();
        foreach (var step in result.Steps)
        {
            decisions.Add(Decision(step.Host));
        }

        for (int h = 0; h < _hosts.Length; h++)
        {
            if (!_inRun[h])
            {
                decisions.Add(Decision(h));
            }
        }

        if (steps.Count == 0)
        {
            _warnings.Add(new PlanWarning(PlanCodes.NothingToReboot, "No host is to be rebooted.", "Check the hosts to include or ignore, and whether any host needs a reboot."));
        }

        return new Plan(_pool, _options, decisions, steps, returns, [.. _blockers], [.. _warnings], estimate);
    }

    private HostDecision Decision(int h) =>
        new(_hosts[h].Uuid, _hosts[h].Name, h == _master, _inRun[h] ? HostAction.Reboot : HostAction.Skip, _reason[h]);

    private PlannedMigration Migration(int v, int from, int to) =>
        new(_vms[v].Uuid, _vms[v].Name, _hosts[from].Uuid, _hosts[from].Name, _hosts[to].Uuid, _hosts[to].Name, _memory[v]);

    private static string NameList(List<string> names) =>
        names.Count <= MaxNamesListed
            ? string.Join(", ", names)
            : string.Join(", ", names.Take(MaxNamesListed)) + Invariant($" and {names.Count - MaxNamesListed} more");

    private static string Plural(int count, string noun) => count == 1 ? noun : noun + "s";

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    // ---------------------------------------------------------------- simulation state

    private readonly record struct Move(int Vm, int From, int To);

    private readonly record struct Unplaced(int Vm, int Roomiest, long RoomiestFree);

    private sealed record StepDraft(int Host, int Wave, bool IsMaster, List<Move> Moves);

    private sealed class SimulationResult(Strategy strategy)
    {
        public Strategy Strategy { get; } = strategy;

        public List<StepDraft> Steps { get; } = [];

        public List<Blocker> Failures { get; } = [];

        public int Unplaced { get; set; }

        public PlacementState? State { get; set; }
    }

    /// <summary>Free memory, VM locations and group membership per host, with an undo log for trial placements.</summary>
    private sealed class PlacementState
    {
        public const int Halted = -1;

        private readonly PlanBuilder _plan;
        private readonly List<Move> _log = [];

        // Members of each anti-affinity group per host: [host * groups + group].
        private readonly int[] _groupCount;
        private readonly int _groupTotal;

        public PlacementState(PlanBuilder plan)
        {
            _plan = plan;
            Free = [.. plan._hosts.Select(h => h.MemoryFree)];
            Location = [.. plan._home];
            _groupTotal = plan._groupNames.Length;
            _groupCount = new int[plan._hosts.Length * _groupTotal];
            for (int v = 0; v < Location.Length; v++)
            {
                foreach (int g in plan._groups[v])
                {
                    _groupCount[(Location[v] * _groupTotal) + g]++;
                }
            }
        }

        public long[] Free { get; }

        public int[] Location { get; }

        public int Checkpoint => _log.Count;

        public bool Conflicts(int vm, int host)
        {
            foreach (int g in _plan._groups[vm])
            {
                if (_groupCount[(host * _groupTotal) + g] > 0)
                {
                    return true;
                }
            }

            return false;
        }

        public void Move(int vm, int to)
        {
            int from = Location[vm];
            _log.Add(new PlanBuilder.Move(vm, from, to));
            Apply(vm, from, to);
        }

        public void Rollback(int checkpoint)
        {
            for (int k = _log.Count - 1; k >= checkpoint; k--)
            {
                var m = _log[k];
                Apply(m.Vm, m.To, m.From);
            }

            _log.RemoveRange(checkpoint, _log.Count - checkpoint);
        }

        public IEnumerable<PlanBuilder.Move> MovesSince(int checkpoint)
        {
            for (int k = checkpoint; k < _log.Count; k++)
            {
                yield return _log[k];
            }
        }

        /// <summary>VMs moved since the checkpoint, each once, in the order first moved.</summary>
        public IEnumerable<int> MovedSince(int checkpoint)
        {
            var seen = new HashSet<int>();
            for (int k = checkpoint; k < _log.Count; k++)
            {
                if (seen.Add(_log[k].Vm))
                {
                    yield return _log[k].Vm;
                }
            }
        }

        public long Load(int host)
        {
            long load = 0;
            for (int v = 0; v < Location.Length; v++)
            {
                if (Location[v] == host)
                {
                    load += _plan._memory[v];
                }
            }

            return load;
        }

        public bool HoldsVmFrom(int host, int home)
        {
            for (int v = 0; v < Location.Length; v++)
            {
                if (Location[v] == host && _plan._home[v] == home)
                {
                    return true;
                }
            }

            return false;
        }

        /// <summary>The VMs now on these hosts, largest first (then canonical order).</summary>
        public int[] VmsOn(int[] hosts)
        {
            var vms = new List<int>();
            for (int v = 0; v < Location.Length; v++)
            {
                if (Array.IndexOf(hosts, Location[v]) >= 0)
                {
                    vms.Add(v);
                }
            }

            vms.Sort((a, b) =>
            {
                int c = _plan._memory[b].CompareTo(_plan._memory[a]);
                return c != 0 ? c : a.CompareTo(b);
            });
            return [.. vms];
        }

        /// <summary>The VM is shut down (its host reboots with it): it leaves the simulation. Location becomes -1.</summary>
        public void Halt(int vm)
        {
            if (Location[vm] >= 0)
            {
                Move(vm, Halted);
            }
        }

        private void Apply(int vm, int from, int to)
        {
            long memory = _plan._memory[vm];
            Location[vm] = to;
            foreach (int host in (ReadOnlySpan<int>)[from, to])
            {
                if (host == Halted)
                {
                    continue;
                }

                int sign = host == from ? 1 : -1;
                Free[host] += sign * memory;
                foreach (int g in _plan._groups[vm])
                {
                    _groupCount[(host * _groupTotal) + g] -= sign;
                }
            }
        }
    }
}
