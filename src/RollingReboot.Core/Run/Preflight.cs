using RollingReboot.Core.Planning;
using RollingReboot.Core.Pool;
using RollingReboot.Core.Ports;
using RollingReboot.Core.Run.Engine;

namespace RollingReboot.Core.Run;

/// <summary>The CloudStack cluster a pool belongs to, when CloudStack manages it.</summary>
public sealed record ClusterBinding(ICloudStack Api, CloudStackCluster Cluster);

public sealed record PreflightResult(PoolSnapshot Pool, Plan Plan, IReadOnlyList<CloudStackHost> CloudStackHosts, IReadOnlyDictionary<string, IReadOnlyList<string>> AntiAffinity)
{
    /// <summary>Hosts the needs-reboot command said need no reboot (uuid to what it answered): left alone.</summary>
    public IReadOnlyDictionary<string, string> NotNeedingReboot { get; init; } = new Dictionary<string, string>();

    /// <summary>VMs XAPI says are busy with another operation (a backup's export or snapshot: OTHER_OPERATION_IN_PROGRESS):
    /// no blocker, but their host is not evacuated until they are done (bounded wait). VM uuid to host uuid and operation.</summary>
    public IReadOnlyDictionary<string, BusyVm> BusyVms { get; init; } = new Dictionary<string, BusyVm>();

    /// <summary>CloudStack's placement rules as read before the run (<see cref="CloudStackPlacement.None"/> without CloudStack).</summary>
    public CloudStackPlacement Placement { get; init; } = CloudStackPlacement.None;
}

/// <summary>A VM busy with another operation on a host.</summary>
public sealed record BusyVm(string VmName, string HostUuid, string Operation);

/// <summary>The operator's checks preflight runs: the needs-reboot command on each host, the blocker command.</summary>
public sealed record PreflightCommands(HostCommands Commands, string Cluster, string RunId)
{
    /// <summary>The alert gate (--prometheus-url): active alerts, or a source that cannot be asked, block the start.</summary>
    public AlertGate? Alerts { get; init; }
}

/// <summary>
/// Everything that could stop the run, checked before anything is touched. Reads only.
/// Over 400 lines on purpose: XAPI's, CloudStack's and the operator's checks in one place, in the order they run; the
/// rules themselves live in the planner and CloudStackPlacement.
/// </summary>
public static class Preflight
{
    /// <summary>XAPI calls preflight has in flight at once (get_vms_which_prevent_evacuation, VM.assert_can_boot_here).</summary>
    private const int ParallelAsks = 8;

    /// <summary>Codes XAPI reports for every unprotected VM while HA is on; HA is off during the run.</summary>
    private static readonly HashSet<string> s_haNoise = ["HOST_EVACUATE_VM_NOT_HA_PROTECTED", "HOST_NOT_ENOUGH_FREE_MEMORY", "NO_HOSTS_AVAILABLE"];

    public static async Task<PreflightResult> RunAsync(
        IPoolConnection pool, ClusterBinding? cloud, PlanOptions options, IReadOnlySet<string> alreadyRebooted, CancellationToken cancellationToken = default, string? onlyHostUuid = null,
        IReadOnlyDictionary<string, IReadOnlyList<string>>? knownAntiAffinity = null, PreflightCommands? commands = null, CloudStackPlacement? knownPlacement = null,
        PoolSnapshot? snapshot = null, CloudStackAhead? cloudAhead = null)
    {
        // CloudStack's reads depend on nothing XAPI says: they go on while the pool is read and asked (or were started
        // before the pool was read, by a caller that read it itself: the dry run).
        if (cloud is not null && cloudAhead is not null && ReferenceEquals(cloudAhead.Cloud, cloud))
        {
            return await RunWithCloudReadAsync(pool, cloud, cloudAhead.Read, options, alreadyRebooted, onlyHostUuid, knownAntiAffinity, commands, knownPlacement, snapshot, cancellationToken);
        }

        await using var cloudReading = cloud is null ? null : CloudStackAhead.Start(cloud, cancellationToken);
        return await RunWithCloudReadAsync(pool, cloud, cloudReading?.Read, options, alreadyRebooted, onlyHostUuid, knownAntiAffinity, commands, knownPlacement, snapshot, cancellationToken);
    }

    /// <summary>
    /// Preflight's CloudStack reads (the cluster, its hosts and VMs, dedicated hosts, pending jobs), started ahead of the rest.
    /// Disposing it stops what is still being read and waits for it to end (when XAPI failed first, its failure is reported).
    /// </summary>
    public sealed class CloudStackAhead : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop;

        private CloudStackAhead(ClusterBinding cloud, CancellationToken cancellationToken)
        {
            Cloud = cloud;
            _stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            Read = ReadCloudStackAsync(cloud, _stop.Token);
        }

        internal ClusterBinding Cloud { get; }

        internal Task<CloudStackRead> Read { get; }

        public static CloudStackAhead Start(ClusterBinding cloud, CancellationToken cancellationToken) => new(cloud, cancellationToken);

        public async ValueTask DisposeAsync()
        {
            if (!Read.IsCompleted)
            {
                await _stop.CancelAsync();
                await Read.Settled();
            }

            _ = Read.Exception;
            _stop.Dispose();
        }
    }

    /// <summary>--apply-updates: what each host would install, read beside the pool (XenServer's /updates, XCP-ng's updater plugin).</summary>
    private static async Task<PoolSnapshot> ReadUpdatesAsync(IPoolConnection pool, PoolSnapshot snapshot, List<Blocker> blockers, CancellationToken cancellationToken)
    {
        const string code = "UPDATES_UNAVAILABLE";
        if (pool.Updates is not { } source)
        {
            blockers.Add(new Blocker(code, "This pool connection cannot install updates.", "Run without --apply-updates."));
            return snapshot;
        }

        try
        {
            return snapshot with { Updates = await source.ReadAsync(null, cancellationToken) };
        }
        catch (PoolOperationException e) when (!e.IsTransient)
        {
            blockers.Add(new Blocker(code, $"The pool's updates could not be read: {e.Message}.",
                "XenServer: configure and enable an update repository (xe repository-list, xe pool-configure-repository) and sync it; XCP-ng: check the hosts' yum repositories; or run without --apply-updates."));
            return snapshot;
        }
    }

    private static async Task<PreflightResult> RunWithCloudReadAsync(
        IPoolConnection pool, ClusterBinding? cloud, Task<CloudStackRead>? cloudRead, PlanOptions options, IReadOnlySet<string> alreadyRebooted, string? onlyHostUuid,
        IReadOnlyDictionary<string, IReadOnlyList<string>>? knownAntiAffinity, PreflightCommands? commands, CloudStackPlacement? knownPlacement, PoolSnapshot? known,
        CancellationToken cancellationToken)
    {
        // One host asked about (before each host of a run): XAPI's view of it is asked beside the pool read, not after.
        var early = known is null && onlyHostUuid is not null ? pool.GetVmsPreventingEvacuationAsync(onlyHostUuid, cancellationToken) : null;
        PoolSnapshot snapshot;
        try
        {
            snapshot = known ?? await pool.ReadAsync(cancellationToken);
        }
        catch
        {
            if (early is not null)
            {
                await early.Settled();
            }

            throw;
        }

        if (options.MigrationNetwork is not null && snapshot.Networks.Count == 0)
        {
            // Read again before every wave: a rebooted host must have its PIF on the network back before it takes VMs.
            snapshot = snapshot with { Networks = await pool.ReadNetworksAsync(cancellationToken) };
        }

        var extra = new List<Blocker>();
        if (options.ApplyUpdates && snapshot.Updates is null)
        {
            snapshot = await ReadUpdatesAsync(pool, snapshot, extra, cancellationToken);
        }

        PlanWarning? clustered = null;
        if (snapshot.Srs.FirstOrDefault(s => s.Clustered) is { } gfs2 && options.MaxHostsDown != 1)
        {
            // xapi_host_helpers.ml: with a clustered SR plugged, a reboot is refused while any other host is down.
            clustered = new PlanWarning("CLUSTERED_SR_ONE_HOST_AT_A_TIME",
                $"SR {gfs2.Name} is clustered (GFS2): XAPI refuses a reboot while another host is down, so hosts go one at a time (--max-hosts-down {(options.MaxHostsDown == PlanOptions.AutoMaxHostsDown ? "auto" : options.MaxHostsDown.ToString(System.Globalization.CultureInfo.InvariantCulture))} not used)",
                "nothing to do; a pool without clustered SRs can reboot several hosts at once");
            options = options with { MaxHostsDown = 1 };
        }

        var notNeeding = new Dictionary<string, string>(StringComparer.Ordinal);
        if (commands is not null)
        {
            options = await ApplyCommandsAsync(commands, snapshot, options, alreadyRebooted, extra, notNeeding, cancellationToken);
        }

        var vmIssues = new Dictionary<string, VmIssue>();
        var busy = new Dictionary<string, BusyVm>(StringComparer.Ordinal);
        var hidden = new HashSet<string>(StringComparer.Ordinal);
        // Mid-run CloudStack is not asked again (its hosts are Disconnected); the groups found before the run hold.
        var antiAffinity = new Dictionary<string, IReadOnlyList<string>>(knownAntiAffinity ?? new Dictionary<string, IReadOnlyList<string>>());
        IReadOnlyList<CloudStackHost> csHosts = [];
        var placement = knownPlacement ?? CloudStackPlacement.None;
        var warnings = new List<PlanWarning>();

        // XAPI's own view of what prevents evacuation, host by host.
        // Before each host of a run only that host is asked again; the full check ran before the run.
        // Asked of several hosts at a time, taken in host order as before.
        var asked = snapshot.Hosts.Where(h => h.Live && (onlyHostUuid is null || h.Uuid == onlyHostUuid)).OrderBy(h => h.Name, StringComparer.Ordinal).ToList();
        if (early is not null && !asked.Any(h => h.Uuid == onlyHostUuid))
        {
            // The host is not live: what XAPI said about it, answer or error, is not used.
            await early.Settled();
        }

        var answers = early is not null && asked.Count == 1
            ? [await early]
            : await BoundedAsync(asked, host => pool.GetVmsPreventingEvacuationAsync(host.Uuid, cancellationToken), cancellationToken);
        Dictionary<string, VmState>? vmsByUuid = null;
        for (var i = 0; i < asked.Count; i++)
        {
            var host = asked[i];
            foreach (var (vmUuid, reason) in answers[i].OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                var code = reason.Count > 0 ? reason[0] : "UNKNOWN";
                if (snapshot.Ha.Enabled && s_haNoise.Contains(code))
                {
                    if (code == "HOST_EVACUATE_VM_NOT_HA_PROTECTED")
                    {
                        // XAPI stopped at "not protected": its real blockers (SRs, networks, CPU) are checked below.
                        hidden.Add(vmUuid);
                    }

                    continue;
                }

                if (code is "HOST_NOT_ENOUGH_FREE_MEMORY" or "NO_HOSTS_AVAILABLE")
                {
                    // Capacity is the planner's to judge, step by step.
                    continue;
                }

                vmsByUuid ??= snapshot.Vms.GroupBy(v => v.Uuid, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
                var vm = vmsByUuid.GetValueOrDefault(vmUuid);
                if (code == "OTHER_OPERATION_IN_PROGRESS")
                {
                    // ["VM"; ref; operations; their refs] (ocaml/idl/datamodel_errors.ml): worth waiting for, not a blocker.
                    busy[vmUuid] = new BusyVm(vm?.Name ?? vmUuid, host.Uuid, reason.Count > 3 ? reason[3] : "another operation");
                    continue;
                }

                vmIssues.TryAdd(vmUuid, new VmIssue(code, $"XAPI says VM {vm?.Name ?? vmUuid} on {host.Name} cannot be evacuated ({code})", FixFor(code)));
            }
        }

        if (cloud is not null)
        {
            // Read again: the state decides what the run will do with it.
            var read = await cloudRead!;
            var cluster = read.Cluster;
            if (!cluster.HypervisorType.Equals("XenServer", StringComparison.OrdinalIgnoreCase))
            {
                extra.Add(new Blocker("NOT_XENSERVER", $"CloudStack cluster {cluster.Name} runs {cluster.HypervisorType}, not XenServer", "name a XenServer cluster", null, null));
            }

            csHosts = read.Hosts;
            var poolNames = snapshot.Hosts.Select(h => h.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);
            var poolAddresses = snapshot.Hosts.Select(h => h.Address).ToHashSet(StringComparer.OrdinalIgnoreCase);
            foreach (var h in csHosts.Where(h => !poolNames.Contains(h.Name) && !poolAddresses.Contains(h.IpAddress)))
            {
                extra.Add(new Blocker("CLOUDSTACK_HOST_NOT_IN_POOL", $"CloudStack host {h.Name} ({h.IpAddress}) of cluster {cluster.Name} is not in pool {snapshot.Name}", "check that --clustername names the cluster of this pool", null, h.Name));
            }

            var csNames = csHosts.Select(h => h.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);
            var csAddresses = csHosts.Select(h => h.IpAddress).ToHashSet(StringComparer.OrdinalIgnoreCase);
            foreach (var h in snapshot.Hosts.Where(h => !csNames.Contains(h.Name) && !csAddresses.Contains(h.Address)))
            {
                extra.Add(new Blocker("POOL_HOST_NOT_IN_CLOUDSTACK", $"pool host {h.Name} is not a host of CloudStack cluster {cluster.Name}", "add it to the cluster in CloudStack, or check the cluster name", null, h.Name));
            }

            warnings.AddRange(ManagedStateWarnings(cluster));
            // A host disabled until its reboot is rebooted and enabled by the run: not left disabled.
            foreach (var h in snapshot.Hosts.Where(h => !h.Enabled && !h.DisabledUntilReboot).OrderBy(h => h.Name, StringComparer.Ordinal))
            {
                // XenServerConnectionPool.connect refuses a disabled host, and for a disabled master the whole pool.
                warnings.Add(new PlanWarning("CLOUDSTACK_HOST_DISABLED_IN_XAPI",
                    h.Uuid == snapshot.MasterUuid
                        ? $"Pool master {h.Name} is disabled in XAPI and the run leaves it so: once the cluster is Managed again, CloudStack connects no host of the pool (all Alert)"
                        : $"Host {h.Name} is disabled in XAPI and the run leaves it so: once the cluster is Managed again, CloudStack cannot connect it (Alert)",
                    h.EnableRefused
                        ? $"if it should take VMs: {Steps.HostEnabling.ApplyFix(h)} (XAPI refuses host.enable while its guidance is pending); otherwise the report says so at the end"
                        : $"enable it before the run ('xe host-enable host={h.Name}') if it should take VMs; otherwise the report says so at the end"));
            }
            if (cluster.ManagedState is CloudStackStates.PrepareUnmanaged or CloudStackStates.PrepareUnmanagedError)
            {
                // ResourceManagerImpl.updateCluster refuses to unmanage while a host is in any other state.
                foreach (var h in csHosts.Where(h => h.State is not ("Up" or "Down" or "Disconnected" or "Alert")))
                {
                    extra.Add(new Blocker("CLOUDSTACK_HOST_STATE",
                        $"CloudStack shows host {h.Name} {h.State}: it cannot unmanage cluster {cluster.Name} then (\"PrepareUnmanaged Failed due to host {h.IpAddress} should not be in {h.State} status\")",
                        $"wait until CloudStack shows {h.Name} Up, Down, Disconnected or Alert, then run again", null, h.Name));
                }
            }

            // An unmanaged cluster's hosts are Disconnected by design (and so mid-run, when resuming).
            foreach (var h in csHosts.Where(h => h.State != "Up" && cluster.ManagedState == "Managed"))
            {
                var poolHost = snapshot.Hosts.FirstOrDefault(p => p.Name.Equals(h.Name, StringComparison.OrdinalIgnoreCase) || p.Address == h.IpAddress);
                var fix = h.State == "Alert" && poolHost is { Enabled: false }
                    ? $"the pool left {h.Name} disabled (after a crash?): run 'xe host-enable host={h.Name}' once the host is healthy, then wait for CloudStack to show it Up"
                    : $"bring {h.Name} back to Up in CloudStack before the run";
                extra.Add(new Blocker("CLOUDSTACK_HOST_NOT_UP", $"CloudStack shows host {h.Name} {h.State}", fix, null, h.Name));
            }

            var vms = read.Vms;
            placement = CloudStackPlacement.From(snapshot, csHosts, vms, read.Dedicated, read.DedicatedUnread);
            // Only "host anti-affinity" is a rule; "non-strict host anti-affinity" is a preference (NonStrictHostAntiAffinityProcessor.check is always true).
            foreach (var (vm, groups) in placement.StrictAntiAffinity)
            {
                antiAffinity[vm] = groups;
            }

            warnings.AddRange(placement.Describe());
            extra.AddRange(RunningJobs(cloud, csHosts, vms, read.PendingJobs));
        }

        var constraints = new PlanConstraints
        {
            AntiAffinityGroups = antiAffinity,
            ExtraVmBlockers = vmIssues,
            AlreadyRebootedHosts = alreadyRebooted,
            // CloudStack's rules shape the placements; placement.Check below verifies the plan against them independently.
            HostFilter = placement.HasHostRules ? placement.WhyNot : null,
            TogetherGroups = placement.HostAffinity,
            PreferApartGroups = placement.PreferredAntiAffinity,
            PreferTogetherGroups = placement.PreferredHostAffinity,
        };
        // Hosts CloudStack places nothing on take no VMs: the planner sees them as disabled (and so leaves them alone).
        var planned = placement.NotEnabledHosts.Count == 0
            ? snapshot
            : snapshot with { Hosts = snapshot.Hosts.Select(h => placement.NotEnabledHosts.ContainsKey(h.Name) ? h with { Enabled = false } : h).ToList() };
        var plan = options.MaxHostsDown == PlanOptions.AutoMaxHostsDown
            ? FastestPlan(planned, options, constraints)
            : EvacuationPlanner.Plan(planned, options, constraints);
        if (!ReferenceEquals(planned, snapshot))
        {
            plan = WithCloudStackDisabledHosts(plan, snapshot, placement);
        }

        var (placementBlockers, placementWarnings) = placement.Check(plan, snapshot);
        extra.AddRange(placementBlockers);
        warnings.AddRange(placementWarnings);
        extra.AddRange(await HiddenByHaAsync(pool, snapshot, plan, hidden, cancellationToken));
        if (extra.Count > 0)
        {
            plan = plan with { Blockers = [.. plan.Blockers, .. extra] };
        }

        if (clustered is not null)
        {
            plan = plan with { Warnings = [clustered, .. plan.Warnings] };
        }

        if (warnings.Count > 0)
        {
            plan = plan with { Warnings = [.. plan.Warnings, .. warnings] };
        }

        if (notNeeding.Count > 0)
        {
            plan = plan with
            {
                Hosts = plan.Hosts.Select(h => notNeeding.TryGetValue(h.Uuid, out var why) ? h with { Action = "skip", Reason = $"no reboot needed (--needs-reboot-command {why})" } : h).ToList(),
            };
        }

        return new PreflightResult(snapshot, plan, csHosts, antiAffinity) { NotNeedingReboot = notNeeding, Placement = placement, BusyVms = busy };
    }

    /// <summary>
    /// PrepareUnmanaged and PrepareUnmanagedError named, with what the run does: they are not "unmanaged", since the hosts
    /// that never disconnected are still pinged (AgentManagerImpl.MonitorTask) and a reboot sends them to Alert and HA.
    /// ResourceManagerImpl.updateCluster accepts Unmanaged again from either (old state differs from the new one).
    /// </summary>
    private static IEnumerable<PlanWarning> ManagedStateWarnings(CloudStackCluster cluster)
    {
        var set = $"cmk update cluster id={cluster.Id} managedstate=";
        if (cluster.ManagedState == CloudStackStates.PrepareUnmanagedError)
        {
            yield return new PlanWarning("CLOUDSTACK_PREPARE_UNMANAGED_ERROR",
                $"CloudStack cluster {cluster.Name} is PrepareUnmanagedError: an earlier unmanage did not finish, and CloudStack still pings the hosts it did not disconnect (a host rebooted now would go Alert and into CloudStack's HA)",
                $"the run asks CloudStack to unmanage it again, starts only once it reads Unmanaged, and sets it Managed at the end; if CloudStack fails again, check its hosts (cmk list hosts clusterid={cluster.Id}) and set it back with '{set}Managed'");
        }
        else if (cluster.ManagedState == CloudStackStates.PrepareUnmanaged)
        {
            yield return new PlanWarning("CLOUDSTACK_PREPARE_UNMANAGED",
                $"CloudStack cluster {cluster.Name} is PrepareUnmanaged: an unmanage is under way (another caller's updateCluster), or was cut off (a management server restarted during it), and its hosts may still be pinged",
                $"the run waits for it to end (CloudStack gives up after about 200 s), asks for Unmanaged again if it is stuck, and starts only once it reads Unmanaged; to clear it by hand: '{set}Managed'");
        }
    }

    /// <summary>The plan in the pool's real terms: hosts CloudStack keeps empty say why they are left alone.</summary>
    private static Plan WithCloudStackDisabledHosts(Plan plan, PoolSnapshot snapshot, CloudStackPlacement placement)
    {
        var reallyEnabled = snapshot.Hosts.Where(h => h.Enabled && placement.NotEnabledHosts.ContainsKey(h.Name)).Select(h => h.Name).ToHashSet(StringComparer.Ordinal);
        return plan with
        {
            Pool = snapshot,
            Hosts = plan.Hosts.Select(h => reallyEnabled.Contains(h.Name) && h.Action == HostAction.Skip
                ? h with { Reason = $"CloudStack resource state {placement.NotEnabledHosts[h.Name]}: takes no VMs, left alone" }
                : h).ToList(),
            // The planner's "disabled, still needs a reboot: xe host-enable" does not apply to a host XAPI has enabled.
            Warnings = plan.Warnings.Where(w => w.Code != PlanCodes.HostDisabledPending || !reallyEnabled.Any(n => w.Message.StartsWith($"Host {n} ", StringComparison.Ordinal))).ToList(),
        };
    }

    /// <summary>
    /// With HA on, XAPI reports an unprotected VM only as HOST_EVACUATE_VM_NOT_HA_PROTECTED and hides why it could not
    /// move (xapi_host.ml get_vms_which_prevent_evacuation partitions them out first). So each such VM is asked about
    /// every host the plan sends it to, with VM.assert_can_boot_here, before anything changes. Memory is the planner's to
    /// judge (the target may be emptied first), so a memory answer is no blocker.
    /// </summary>
    private static async Task<IReadOnlyList<Blocker>> HiddenByHaAsync(IPoolConnection pool, PoolSnapshot snapshot, Plan plan, IReadOnlySet<string> hidden, CancellationToken cancellationToken)
    {
        if (hidden.Count == 0)
        {
            return [];
        }

        var asks = plan.Steps.SelectMany(s => s.Migrations).Where(m => hidden.Contains(m.VmUuid))
            .Select(m => (m.VmUuid, m.VmName, m.ToUuid, m.ToName)).Distinct().ToList();
        var answers = await BoundedAsync(asks, async a => (a, Error: await pool.CanBootHereAsync(a.VmUuid, a.ToUuid, cancellationToken)), cancellationToken);
        var blockers = new List<Blocker>();
        foreach (var ((vm, name, _, toName), error) in answers.Where(x => x.Error is { Count: > 0 }).OrderBy(x => x.a.VmName, StringComparer.Ordinal))
        {
            var code = error![0];
            // About the target's state now (memory, disabled until its reboot, down), not about the VM: the plan's to judge.
            if (code is "HOST_NOT_ENOUGH_FREE_MEMORY" or "NO_HOSTS_AVAILABLE" or "HOST_DISABLED" or "HOST_NOT_LIVE" or "HOST_OFFLINE" or "HOST_DISABLED_UNTIL_REBOOT"
                || blockers.Any(b => b.Vm == name))
            {
                continue;
            }

            var host = snapshot.Vms.FirstOrDefault(v => v.Uuid == vm)?.ResidentOnUuid is { } r ? snapshot.FindHost(r)?.Name : null;
            blockers.Add(new Blocker(code, $"XAPI says VM {name} on {host ?? "?"} cannot run on {toName} ({code}); HA hid this (the VM is not HA-protected)", FixFor(code), name, host));
        }

        return blockers;
    }

    /// <summary>
    /// The blocker command (a blocker while it fails) and the needs-reboot command on every host the plan could
    /// reboot (a host that needs none is left alone, as if ignored; one that cannot be asked is a blocker).
    /// </summary>
    private static async Task<PlanOptions> ApplyCommandsAsync(
        PreflightCommands c, PoolSnapshot snapshot, PlanOptions options, IReadOnlySet<string> alreadyRebooted, List<Blocker> extra, Dictionary<string, string> notNeeding, CancellationToken cancellationToken)
    {
        var env = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [HookVariables.Phase] = "preflight",
            [HookVariables.Pool] = snapshot.Name,
            [HookVariables.PoolUuid] = snapshot.Uuid,
            [HookVariables.Cluster] = c.Cluster,
            [HookVariables.RunId] = c.RunId,
        };
        if (await c.Commands.CheckBlockerAsync(env, cancellationToken) is { } blocked)
        {
            extra.Add(new Blocker("BLOCKER_COMMAND", blocked, "wait until the check passes (e.g. no alert firing), or fix what it reports; then run again", null, null));
        }

        if (c.Alerts is { } alerts && await alerts.CheckAsync(cancellationToken) is { } alerting)
        {
            extra.Add(alerting.Unreadable
                ? new Blocker("ALERTS_UNREADABLE", alerting.Why, "check --prometheus-url and that Prometheus answers (curl URL/api/v1/alerts); an alert source that cannot be read blocks, as in kured", null, null)
                : new Blocker("ALERTS_ACTIVE", alerting.Why, "wait until the alerts resolve, or leave known ones out with --alert-filter (or count only firing ones: --alert-firing-only); then run again", null, null));
        }

        if (c.Commands.Options.NeedsRebootCommand is null)
        {
            return options;
        }

        bool Named(IReadOnlyList<string> names, HostState h) => names.Any(n => n.Equals(h.Name, StringComparison.Ordinal) || n.Equals(h.Uuid, StringComparison.Ordinal));
        var candidates = snapshot.Hosts
            .Where(h => h.Live && !alreadyRebooted.Contains(h.Uuid) && !Named(options.IgnoreHosts, h) && (options.IncludeHosts.Count == 0 || Named(options.IncludeHosts, h)))
            .ToList();
        var answers = await c.Commands.CheckNeedsRebootAsync(candidates, cancellationToken);
        var ignore = options.IgnoreHosts.ToList();
        foreach (var h in candidates.OrderBy(h => h.Name, StringComparer.Ordinal))
        {
            var (needs, detail) = answers[h.Uuid];
            if (needs is null)
            {
                extra.Add(new Blocker("NEEDS_REBOOT_CHECK_FAILED", $"--needs-reboot-command could not be run on {h.Name}: {detail}", "fix SSH access to the host, or run without --needs-reboot-command", null, h.Name));
            }
            else if (needs == false)
            {
                notNeeding[h.Uuid] = detail;
                ignore.Add(h.Uuid);
            }
        }

        return options with { IgnoreHosts = ignore };
    }

    /// <summary>
    /// CloudStack jobs still running on the cluster, one of its hosts or a VM on them (a migration, a host going into
    /// maintenance, a VM being deployed or started there): the run would fight them, so it does not start.
    /// </summary>
    private static List<Blocker> RunningJobs(ClusterBinding cloud, IReadOnlyList<CloudStackHost> hosts, IReadOnlyList<CloudStackVm> vms, IReadOnlyList<CloudStackAsyncJob> pending)
    {
        var hostsById = hosts.ToDictionary(h => h.Id, StringComparer.OrdinalIgnoreCase);
        var vmsById = vms.GroupBy(v => v.Id, StringComparer.OrdinalIgnoreCase).ToDictionary(g => g.Key, g => g.First(), StringComparer.OrdinalIgnoreCase);
        var blockers = new List<Blocker>();
        foreach (var job in pending.OrderBy(j => j.Created).ThenBy(j => j.JobId, StringComparer.Ordinal))
        {
            string? hostName = null;
            string? vmName = null;
            string what;
            if (job.InstanceId is not { } id)
            {
                continue;
            }

            if (job.InstanceType is "Host" && hostsById.TryGetValue(id, out var host))
            {
                hostName = host.Name;
                what = "host " + host.Name;
            }
            else if (job.InstanceType is "Cluster" && id.Equals(cloud.Cluster.Id, StringComparison.OrdinalIgnoreCase))
            {
                what = "cluster " + cloud.Cluster.Name;
            }
            else if (job.InstanceType is "VirtualMachine" or "DomainRouter" or "ConsoleProxy" or "SystemVm" && vmsById.TryGetValue(id, out var vm))
            {
                vmName = vm.InstanceName;
                hostName = vm.HostName;
                what = $"VM {vm.InstanceName}" + (vm.HostName is null ? "" : " on " + vm.HostName);
            }
            else
            {
                continue;
            }

            var since = job.Created is { } created ? $", started {created.ToUniversalTime():yyyy-MM-dd HH:mm:ss}Z" : "";
            var by = job.Account is { Length: > 0 } account ? $" by account {account}" : "";
            blockers.Add(new Blocker(
                "CLOUDSTACK_JOB_RUNNING",
                $"CloudStack job {job.JobId} ({job.ShortCommand}) is running on {what}{since}{by}",
                $"wait for it to finish (cmk query asyncjobresult jobid={job.JobId}) or resolve it in CloudStack, then run the plan again",
                vmName,
                hostName));
        }

        return blockers;
    }

    /// <summary>What preflight reads of CloudStack (listDedicatedHosts may be missing: <see cref="DedicatedUnread"/> says why).</summary>
    internal sealed record CloudStackRead(
        CloudStackCluster Cluster, IReadOnlyList<CloudStackHost> Hosts, IReadOnlyList<CloudStackVm> Vms, IReadOnlyList<CloudStackDedicatedHost>? Dedicated, string? DedicatedUnread,
        IReadOnlyList<CloudStackAsyncJob> PendingJobs);

    /// <summary>
    /// The cluster again, its hosts, its VMs, the dedicated hosts and the pending jobs, asked together (none depends on
    /// another's answer). When several fail, the failure reported is the first in that order, as when they were asked in turn.
    /// </summary>
    private static async Task<CloudStackRead> ReadCloudStackAsync(ClusterBinding cloud, CancellationToken cancellationToken)
    {
        var id = cloud.Cluster.Id;
        var cluster = cloud.Api.GetClusterAsync(id, cancellationToken);
        var hosts = cloud.Api.ListHostsAsync(id, cancellationToken);
        var vms = cloud.Api.ListVirtualMachinesAsync(id, cancellationToken);
        var dedicated = DedicatedHostsAsync(cloud.Api, cancellationToken);
        var jobs = cloud.Api.ListPendingAsyncJobsAsync(cancellationToken);
        try
        {
            await Task.WhenAll(cluster, hosts, vms, dedicated, jobs);
        }
        catch (Exception) when (!cancellationToken.IsCancellationRequested)
        {
            // Every read has ended; the awaits below raise the first failure in order.
        }

        var (dedicatedHosts, unread) = await dedicated;
        return new CloudStackRead(await cluster, await hosts, await vms, dedicatedHosts, unread, await jobs);
    }

    private static async Task<(IReadOnlyList<CloudStackDedicatedHost>? Hosts, string? Unread)> DedicatedHostsAsync(ICloudStack api, CancellationToken cancellationToken)
    {
        try
        {
            return (await api.ListDedicatedHostsAsync(cancellationToken), null);
        }
        catch (CloudStackException e)
        {
            // listDedicatedHosts is a plugin's command (dedicated-resources); without it CloudStack has no dedication.
            return (null, $"CloudStack's dedicated hosts could not be read ({e.ErrorText}): dedication is not checked");
        }
    }

    /// <summary>One call per item, at most <see cref="ParallelAsks"/> at a time; the answers in the items' order.</summary>
    private static async Task<T[]> BoundedAsync<TItem, T>(IReadOnlyList<TItem> items, Func<TItem, Task<T>> ask, CancellationToken cancellationToken)
    {
        using var gate = new SemaphoreSlim(ParallelAsks);
        return await Task.WhenAll(items.Select(async item =>
        {
            await gate.WaitAsync(cancellationToken);
            try
            {
                return await ask(item);
            }
            finally
            {
                gate.Release();
            }
        }));
    }

    /// <summary>
    /// --max-hosts-down auto: plans with 1, 2, ... hosts down (up to half the pool, at most 16) and keeps the one
    /// estimated fastest; a tie goes to fewer hosts down. A plan with more blockers than one host at a time is not taken.
    /// </summary>
    private static Plan FastestPlan(PoolSnapshot snapshot, PlanOptions options, PlanConstraints constraints)
    {
        var best = EvacuationPlanner.Plan(snapshot, options with { MaxHostsDown = 1 }, constraints);
        var most = Math.Min(16, Math.Max(1, snapshot.Hosts.Count / 2));
        for (var k = 2; k <= most; k++)
        {
            var plan = EvacuationPlanner.Plan(snapshot, options with { MaxHostsDown = k }, constraints);
            if (plan.Blockers.Count <= best.Blockers.Count && plan.Estimate.TotalSeconds < best.Estimate.TotalSeconds - 1)
            {
                best = plan;
            }
        }

        return best;
    }

    internal static string FixFor(string code) => code switch
    {
        "VM_REQUIRES_SR" => "move the VM's disks to shared storage (or eject a CD from a local ISO library), or exclude its host with --ignore-hosts",
        "VM_LACKS_FEATURE" or "VM_MISSING_PV_DRIVERS" => "install the guest tools (PV drivers) in the VM, or shut it down for the patch window",
        "VM_HAS_PCI_ATTACHED" or "VM_HAS_VGPU" or "VM_HAS_VUSBS" => "the VM uses passthrough hardware and cannot live-migrate: shut it down for the window or exclude its host",
        "VM_IS_IMMOBILE" or "VM_NON_SUSPENDABLE" => "the VM cannot be live-migrated (platform nomigrate / nested-virt, or the guest refuses suspend): shut it down for the window or exclude its host",
        _ => "resolve it in XenCenter / xe, then run the plan again",
    };
}
