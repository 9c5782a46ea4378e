using RollingReboot.Core.Pool;
using static RollingReboot.Core.Planning.PlanText;

namespace RollingReboot.Core.Planning;

/// <summary>
/// What blocks the run or deserves a warning, apart from the choice of hosts: the pool's state and HA, VMs that
/// cannot be live-migrated, anti-affinity groups already broken, and VMs the placement found no room for.
/// </summary>
internal static class PlanChecks
{
    public static void CheckPool(PlanIndex index, PlanFindings findings)
    {
        var pool = index.Pool;
        if (pool.CurrentOperations.Count > 0)
        {
            findings.Block(new Blocker(
                PlanCodes.PoolBusy,
                $"Pool {pool.Name} has an operation in progress ({string.Join(", ", pool.CurrentOperations.Order(StringComparer.Ordinal))}).",
                "Wait for it to finish (xe task-list), then plan again."));
        }

        if (pool.Ha.Enabled)
        {
            CheckHa(index, pool.Ha, findings);
        }

        if (!index.Options.IgnoreRunningTasks)
        {
            CheckBackups(pool, findings);
        }

        var protectedVms = index.Vms.Where(v => !string.IsNullOrEmpty(v.HaRestartPriority)).Select(v => v.Name).ToList();
        if (protectedVms.Count > 0)
        {
            findings.Warn(new PlanWarning(
                PlanCodes.VmHaProtected,
                Invariant($"{protectedVms.Count} running VM(s) have an HA restart priority, so XenServer HA would restart them while CloudStack manages them too: {NameList(protectedVms)}. HA is off during the run."),
                "Clear the restart priority of CloudStack-managed VMs (xe vm-param-set uuid=... ha-restart-priority=)."));
        }
    }

    /// <summary>Blocks every running VM on a host of the run that cannot be live-migrated, naming why and the fix.</summary>
    public static void CheckVms(PlanIndex index, HostSelection hosts, PlanFindings findings)
    {
        var srs = new Dictionary<string, SrInfo>(StringComparer.Ordinal);
        foreach (var sr in index.Pool.Srs)
        {
            srs.TryAdd(sr.Uuid, sr);
        }

        var pinned = new List<string>();
        for (int v = 0; v < index.VmCount; v++)
        {
            if (!hosts.InRun(index.Home[v]))
            {
                continue;
            }

            var vm = index.Vms[v];
            string host = index.Hosts[index.Home[v]].Name;
            if (index.IsPinned(v))
            {
                pinned.Add($"{vm.Name} on {host} ({index.Pinned[v]})");
                continue;
            }

            var codes = new HashSet<string>(StringComparer.Ordinal);
            foreach (var (code, message, fix) in WhyNotMigratable(vm, host, srs))
            {
                codes.Add(code);
                findings.Block(new Blocker(code, message, fix, vm.Name, host));
            }

            if (index.Constraints.ExtraVmBlockers.TryGetValue(vm.Uuid, out var extra) && !codes.Contains(extra.Code))
            {
                findings.Block(new Blocker(extra.Code, extra.Message, extra.Fix, vm.Name, host));
            }

            if (vm.CurrentOperations.Count > 0)
            {
                findings.Warn(new PlanWarning(
                    PlanCodes.VmBusy,
                    $"VM {vm.Name} on {host} has an operation in progress ({string.Join(", ", vm.CurrentOperations.Order(StringComparer.Ordinal))}).",
                    "Let it finish before the run; its migration waits for it otherwise."));
            }
        }

        if (pinned.Count > 0)
        {
            findings.Warn(new PlanWarning(
                PlanCodes.VmShutdownForReboot,
                Invariant($"{pinned.Count} VM(s) cannot be live-migrated and are shut down right before their host's reboot, then started on it again once it is back (--shutdown-pinned-vms): {NameList(pinned)}."),
                "Tell their owners of the downtime; a guest that does not shut down cleanly within --shutdown-timeout is powered off (VM.hard_shutdown)."));
        }
    }

    /// <summary>
    /// --shutdown-pinned-vms: per VM of the index, the first reason it cannot be live-migrated (its hardware, disks or
    /// CDs, XAPI's verdict, or XAPI's own evacuation check), or null when it can move.
    /// </summary>
    internal static System.Collections.Immutable.ImmutableArray<string?> PinReasons(PoolSnapshot pool, System.Collections.Immutable.ImmutableArray<VmState> vms, PlanConstraints constraints)
    {
        var srs = new Dictionary<string, SrInfo>(StringComparer.Ordinal);
        foreach (var sr in pool.Srs)
        {
            srs.TryAdd(sr.Uuid, sr);
        }

        return [.. vms.Select(vm => WhyNotMigratable(vm, "", srs).Select(r => r.Code).FirstOrDefault()
            ?? (constraints.ExtraVmBlockers.TryGetValue(vm.Uuid, out var extra) ? extra.Code : null))];
    }

    /// <summary>
    /// VM operations of backups and copies (idl/datamodel_vm.ml vm_operations; what backup tools run: Xen Orchestra's
    /// snapshots and exports, XenCenter's export, storage copies). XAPI allows them while hosts reboot, but a reboot
    /// meanwhile competes for the same storage and links and may break them: the run waits for them (Xen Orchestra's
    /// rolling pool update has the same backup guard, xo-server pool.mjs bypassBackupCheck).
    /// </summary>
    internal static readonly HashSet<string> BackupOperations = new(StringComparer.Ordinal)
    {
        "snapshot", "snapshot_with_quiesce", "checkpoint", "clone", "copy", "export", "revert", "migrate_send",
    };

    private static void CheckBackups(PoolSnapshot pool, PlanFindings findings)
    {
        var busy = pool.Vms
            .Select(v => (v.Name, Operations: v.CurrentOperations.Where(BackupOperations.Contains).Distinct().Order(StringComparer.Ordinal).ToList()))
            .Where(v => v.Operations.Count > 0)
            .OrderBy(v => v.Name, StringComparer.Ordinal)
            .Select(v => $"{v.Name} ({string.Join(", ", v.Operations)})")
            .ToList();
        if (busy.Count > 0)
        {
            findings.Block(new Blocker(
                PlanCodes.PoolBackupRunning,
                Invariant($"{busy.Count} VM(s) of pool {pool.Name} are being backed up or copied: {NameList(busy)}."),
                "Let the backup finish (xe task-list), or give --ignore-running-tasks to start anyway; between hosts the run waits for such work, bounded."));
        }
    }

    public static void CheckExistingAntiAffinity(PlanIndex index, PlanFindings findings)
    {
        if (index.GroupNames.Length == 0)
        {
            return;
        }

        var together = new SortedDictionary<(int Host, int Group), List<string>>();
        for (int v = 0; v < index.VmCount; v++)
        {
            foreach (int g in index.Groups[v])
            {
                if (!together.TryGetValue((index.Home[v], g), out var names))
                {
                    together[(index.Home[v], g)] = names = [];
                }

                names.Add(index.Vms[v].Name);
            }
        }

        foreach (var ((host, group), members) in together)
        {
            if (members.Count > 1)
            {
                findings.Warn(new PlanWarning(
                    PlanCodes.AntiAffinityAlreadyBroken,
                    $"VMs {NameList(members)} of anti-affinity group {index.GroupNames[group]} already share host {index.Hosts[host].Name}; the plan never puts VMs of one group together when it moves them.",
                    "Move one of them to another host (CloudStack: migrate the VM) to restore the group's spread."));
            }
        }
    }

    /// <summary>
    /// The blockers for the VMs of one host that found no room: one for memory (the first such VM, with the total),
    /// one per VM that had the memory but only on hosts already running a VM of its anti-affinity group.
    /// </summary>
    public static IEnumerable<Blocker> UnplacedBlockers(PlanIndex index, int source, List<UnplacedVm> unplaced, int targetCount)
    {
        if (unplaced.Count == 0)
        {
            yield break;
        }

        string host = index.Hosts[source].Name;
        var memory = index.Memory;
        var noRoom = unplaced.Where(u => u.Roomiest < 0 || u.RoomiestFree < memory[u.Vm]).ToList();
        if (noRoom.Count > 0)
        {
            yield return NoRoom(index, host, noRoom, targetCount);
        }

        var bundles = new HashSet<int>();
        foreach (var u in unplaced.Where(u => u.Roomiest >= 0 && u.RoomiestFree >= memory[u.Vm]))
        {
            string vm = index.Vms[u.Vm].Name;
            if (index.Together[u.Vm] is >= 0 and var bundle)
            {
                if (bundles.Add(bundle))
                {
                    var members = index.TogetherMembers[bundle];
                    var names = string.Join(", ", members.Select(m => index.Vms[m].Name));
                    yield return new Blocker(
                        PlanCodes.KeptTogether,
                        $"VMs {names} of host affinity group {index.TogetherNames[bundle]} cannot leave {host} together: no host has room for all of them ({Units.Memory(members.Sum(m => memory[m]))}), and the group is kept on one host.",
                        $"Free memory on one host for the whole group, shut the group down for the run, or leave {host} out with --ignore-hosts {host}.",
                        vm,
                        host);
                }

                continue;
            }

            if (index.Groups[u.Vm].Length == 0)
            {
                var rule = index.RuleOf(u.Vm) ?? "its placement rules";
                var allowed = Enumerable.Range(0, index.HostCount).Where(h => h != source && !index.Forbidden(u.Vm, h)).Select(h => index.Hosts[h].Name).ToList();
                yield return allowed.Count == 0
                    ? new Blocker(
                        PlanCodes.PlacementRule,
                        $"VM {vm} cannot leave {host}: its placement rules allow no other host of the pool ({rule}).",
                        $"Shut {vm} down for the run, or leave {host} out with --ignore-hosts {host}.",
                        vm,
                        host)
                    : new Blocker(
                        PlanCodes.PlacementRule,
                        $"VM {vm} cannot leave {host}: its placement rules allow only {NameList(allowed)}, and none can take it at that point (a VM is never pushed onto a host that still has to reboot; {rule}).",
                        $"Leave {allowed[0]} out with --ignore-hosts {allowed[0]} and reboot it in a second run, free memory there, or shut {vm} down for the run.",
                        vm,
                        host);
                continue;
            }

            string groups = string.Join(", ", index.Groups[u.Vm].Select(g => index.GroupNames[g]));
            yield return new Blocker(
                PlanCodes.AntiAffinity,
                $"VM {vm} (anti-affinity group {groups}) cannot leave {host}: every host with room for it already runs a VM of its group.",
                $"Stop one VM of group {groups} for the run, add a host, or leave {host} out with --ignore-hosts {host}.",
                vm,
                host);
        }
    }

    private static void CheckHa(PlanIndex index, HaSettings ha, PlanFindings findings)
    {
        int timeout = ha.TimeoutSeconds ?? 60;
        if (timeout < 120)
        {
            findings.Warn(new PlanWarning(
                PlanCodes.HaTimeoutShort,
                Invariant($"HA is enabled with a timeout of {timeout} s (under 120 s): a host busy with migrations can miss heartbeats and be fenced. HA is off during the run and restored as it was."),
                "Consider a longer HA timeout (e.g. 180 s: xe pool-ha-enable ... ha-config:timeout=180) after the run."));
        }

        int live = index.Hosts.Count(x => x.Live);
        if (index.HostCount < 3)
        {
            findings.Warn(new PlanWarning(
                PlanCodes.HaFewHosts,
                Invariant($"HA is enabled on a pool of {index.HostCount} host(s) ({live} live): with one host rebooting there is no margin left for a failure."),
                "HA is switched off during the run and restored after; consider whether HA is useful on so small a pool."));
        }
    }

    /// <summary>Why XenServer cannot live-migrate this VM, in a fixed order: code, message and fix.</summary>
    private static IEnumerable<(string Code, string Message, string Fix)> WhyNotMigratable(VmState vm, string host, Dictionary<string, SrInfo> srs)
    {
        var localDisks = NotShared(vm.DiskSrUuids, srs);
        if (localDisks.Count > 0)
        {
            yield return (PlanCodes.VmRequiresSr,
                $"VM {vm.Name} on {host} has a disk on {Plural(localDisks.Count, "SR")} {string.Join(", ", localDisks)}, not shared: it cannot be live-migrated within the pool.",
                $"Move its disks to a shared SR (storage live migration), or shut {vm.Name} down for the run, or leave {host} out with --ignore-hosts {host}.");
        }

        var localCds = NotShared(vm.CdSrUuids, srs);
        if (localCds.Count > 0)
        {
            yield return (PlanCodes.VmRequiresSr,
                $"VM {vm.Name} on {host} has a CD inserted from {Plural(localCds.Count, "ISO SR")} {string.Join(", ", localCds)}, not shared: it cannot be live-migrated within the pool.",
                $"Eject the CD (xe vm-cd-eject vm={vm.Name}) or move the ISO to a shared ISO library.");
        }

        if (vm.MigrationRefusal is { } code)
        {
            // XAPI's own verdict (VM.allowed_operations lacks pool_migrate), not a guess from the VM's hardware.
            var (message, fix) = RefusalText(code, vm.Name, host);
            yield return (code, message, fix);
        }
    }

    /// <summary>What an operator reads for XAPI's refusal to live-migrate a VM (codes: ocaml/idl/datamodel_errors.ml).</summary>
    private static (string Message, string Fix) RefusalText(string code, string vm, string host) => code switch
    {
        PlanCodes.VmLacksFeature => (
            $"VM {vm} on {host} has no PV drivers and does not advertise feature-suspend: XenServer cannot live-migrate it.",
            $"Install the XenServer VM Tools in {vm}, or shut it down for the run."),
        PlanCodes.VmNonSuspendable => (
            $"VM {vm} on {host} says it cannot be suspended (data-cant-suspend-reason): XenServer cannot live-migrate it.",
            $"Resolve what the guest reports, or shut {vm} down for the run, or leave {host} out with --ignore-hosts {host}."),
        PlanCodes.VmIsImmobile => (
            $"VM {vm} on {host} is immobile (platform nomigrate or nested-virt): XenServer cannot live-migrate it.",
            $"Shut {vm} down for the run, or leave {host} out with --ignore-hosts {host}."),
        PlanCodes.VmHasPci => (
            $"VM {vm} on {host} has a PCI device passed through: it cannot be live-migrated.",
            $"Detach the PCI device or shut {vm} down for the run, or leave {host} out with --ignore-hosts {host}."),
        PlanCodes.VmHasVgpu => (
            $"VM {vm} on {host} has a vGPU that cannot be suspended: XenServer cannot live-migrate it.",
            $"Shut {vm} down for the run, or leave {host} out with --ignore-hosts {host}."),
        PlanCodes.VmHasVusb => (
            $"VM {vm} on {host} has a USB device passed through: it cannot be live-migrated.",
            $"Unplug the USB device from {vm} or shut it down for the run."),
        _ => (
            $"VM {vm} on {host}: XAPI does not allow it to live-migrate ({code}).",
            $"See why in XenCenter or with xe vm-param-get uuid=... param-name=allowed-operations, or shut {vm} down for the run."),
    };

    /// <summary>The names of the SRs among these that are not shared (an unknown SR counts as not shared, by uuid).</summary>
    private static List<string> NotShared(IEnumerable<string> srUuids, Dictionary<string, SrInfo> srs) =>
        [.. srUuids
            .Where(sr => !(srs.TryGetValue(sr, out var info) && info.Shared))
            .Distinct(StringComparer.Ordinal)
            .Select(sr => srs.TryGetValue(sr, out var info) ? info.Name : sr)
            .Order(StringComparer.Ordinal)];

    private static Blocker NoRoom(PlanIndex index, string host, List<UnplacedVm> noRoom, int targetCount)
    {
        var memory = index.Memory;
        var first = noRoom[0];
        string vm = index.Vms[first.Vm].Name;
        string all = noRoom.Count > 1
            ? $"; {noRoom.Count} VMs ({Units.Memory(noRoom.Sum(u => memory[u.Vm]))}) in all find no room"
            : string.Empty;
        string message = targetCount == 0
            ? $"Host {host} cannot be emptied: every other host still has to reboot after it (or is down or disabled), so VM {vm} ({Units.Memory(memory[first.Vm])}) has nowhere to go{all}."
            : $"Host {host} cannot be emptied: VM {vm} needs {Units.Memory(memory[first.Vm])} but the roomiest host already rebooted or out of the run, {index.Hosts[first.Roomiest].Name}, has {Units.Memory(first.RoomiestFree)} free ({Units.Memory(memory[first.Vm] - first.RoomiestFree)} short){all}.";
        return new Blocker(
            PlanCodes.Capacity,
            message,
            targetCount == 0
                ? $"Enable or include another host that can take the VMs (e.g. the master), or leave {host} out with --ignore-hosts {host}."
                : $"Free memory in the pool (shut down or remove VMs, or add a host), or leave {host} out with --ignore-hosts {host}.",
            vm,
            host);
    }
}
