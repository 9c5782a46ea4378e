using System.Collections.Immutable;
using RollingReboot.Core.Pool;
using static RollingReboot.Core.Planning.PlanText;

namespace RollingReboot.Core.Planning;

/// <summary>
/// Which hosts the run reboots, and the reason given to the operator for each host, rebooted or skipped: hosts
/// already rebooted (resume), the operator's lists, disabled hosts and the only-needing-reboot filter. Problems
/// with the hosts themselves (unknown master or names, not live, busy) are reported here. Decided once per plan.
/// </summary>
internal sealed class HostSelection
{
    private readonly PlanIndex _index;
    private readonly ImmutableArray<bool> _inRun;
    private readonly ImmutableArray<string> _reason;
    private readonly ImmutableArray<bool> _alwaysTarget;

    private HostSelection(PlanIndex index, bool[] inRun, string[] reason, bool[] alwaysTarget)
    {
        _index = index;
        _inRun = [.. inRun];
        _reason = [.. reason];
        _alwaysTarget = [.. alwaysTarget];
        AlwaysTargets = [.. Enumerable.Range(0, index.HostCount).Where(h => _alwaysTarget[h])];
    }

    /// <summary>
    /// Hosts not in the run that can take VMs at any time (live and enabled), in canonical order: they never reboot.
    /// </summary>
    public ImmutableArray<int> AlwaysTargets { get; }

    public static HostSelection Decide(PlanIndex index, PlanFindings findings)
    {
        var pool = index.Pool;
        var options = index.Options;
        if (index.Master < 0)
        {
            findings.Block(new Blocker(
                PlanCodes.UnknownMaster,
                $"The pool's master ({pool.MasterUuid}) is not among its hosts.",
                "Read the pool again; if it persists, check the pool with xe host-list and xe pool-list."));
        }

        var ignored = ResolveHostNames(index, options.IgnoreHosts, "ignore", findings);
        var included = ResolveHostNames(index, options.IncludeHosts, "include", findings);
        var rebooted = new HashSet<string>(index.Constraints.AlreadyRebootedHosts, StringComparer.Ordinal);

        var inRun = new bool[index.HostCount];
        var reason = new string[index.HostCount];
        var alwaysTarget = new bool[index.HostCount];
        for (int h = 0; h < index.HostCount; h++)
        {
            var host = index.Hosts[h];
            bool notIncluded = options.IncludeHosts.Count > 0 && !included[h];
            bool disabledUntilReboot = DisabledUntilReboot(host);
            string? skip =
                rebooted.Contains(host.Uuid) ? "already rebooted in this run"
                : ignored[h] ? "ignored by operator"
                : notIncluded ? "not in the hosts to include"
                : !host.Enabled && !disabledUntilReboot ? DisabledReason(host)
                : options.OnlyNeedingReboot && !host.NeedsReboot ? "no reboot needed"
                : UpdateSkip(index, h);

            inRun[h] = skip is null;
            reason[h] = skip is null ? RebootReason(index, h) : skip + PendingSuffix(host);
            alwaysTarget[h] = !inRun[h] && host.Live && host.Enabled;

            bool operatorExcluded = ignored[h] || notIncluded || (!host.Enabled && !disabledUntilReboot);
            ReportHost(host, inRun[h], operatorExcluded, rebooted.Contains(host.Uuid), findings);
        }

        return new HostSelection(index, inRun, reason, alwaysTarget);
    }

    /// <summary>--apply-updates: a host whose updates need no reboot is not in the reboot order (it is updated in place).</summary>
    private static string? UpdateSkip(PlanIndex index, int h)
    {
        var pool = index.Pool;
        if (!index.Options.ApplyUpdates || pool.Updates is not { } updates)
        {
            return null;
        }

        var host = index.Hosts[h];
        var plan = UpdatePlanning.For(host, updates.For(host.Uuid), updates.IsXcpNg, host.Uuid == pool.MasterUuid);
        return plan.Action == UpdateAction.Reboot ? null : $"--apply-updates: {UpdatePlanning.Describe(plan.Action)} ({plan.Why})";
    }

    public bool InRun(int h) => _inRun[h];

    public bool AlwaysTarget(int h) => _alwaysTarget[h];

    public HostDecision Decision(int h) =>
        new(_index.Hosts[h].Uuid, _index.Hosts[h].Name, h == _index.Master, _inRun[h] ? HostAction.Reboot : HostAction.Skip, _reason[h]);

    private static void ReportHost(HostState host, bool inRun, bool operatorExcluded, bool rebooted, PlanFindings findings)
    {
        if (!host.Live && !operatorExcluded)
        {
            findings.Block(new Blocker(
                PlanCodes.HostNotLive,
                $"Host {host.Name} is not live (down, or its toolstack does not answer): the pool is already missing a host.",
                $"Bring {host.Name} back first, or leave it out with --ignore-hosts {host.Name} to go on without it.",
                Host: host.Name));
        }
        else if (!host.Live)
        {
            findings.Warn(new PlanWarning(
                PlanCodes.HostNotLiveIgnored,
                $"Host {host.Name} is not live; it is left out of the run and takes no VMs.",
                $"Bring {host.Name} back and reboot it in a later run if it needs one."));
        }

        if (inRun && host.CurrentOperations.Count > 0)
        {
            findings.Block(new Blocker(
                PlanCodes.HostBusy,
                $"Host {host.Name} has an operation in progress ({string.Join(", ", host.CurrentOperations.Order(StringComparer.Ordinal))}).",
                "Wait for it to finish (xe task-list), then plan again.",
                Host: host.Name));
        }

        if (!inRun && !host.Enabled && host.NeedsReboot && !rebooted)
        {
            findings.Warn(new PlanWarning(
                PlanCodes.HostDisabledPending,
                $"Host {host.Name} is disabled and still needs a reboot{PendingSuffix(host)}; it is left alone.",
                DisabledUntilReboot(host)
                    ? $"XAPI refuses to enable {host.Name} until it reboots: leave it in the run (not ignored, or among the hosts to include) to reboot it, or reboot it by hand; xapi enables it after the reboot."
                    : host.EnableRefused
                        ? $"XAPI refuses to enable {host.Name} until its pending guidance is applied: {ApplyGuidanceFix(host)}, then plan again to include it, or reboot it by hand."
                        : $"Enable {host.Name} (xe host-enable) to include it, or reboot it by hand."));
        }
        else if (!inRun && !rebooted && host.EnableRefused && !DisabledUntilReboot(host))
        {
            findings.Warn(new PlanWarning(
                PlanCodes.HostDisabledGuidance,
                $"Host {host.Name} is disabled until its pending mandatory guidance ({string.Join(", ", host.PendingGuidances.Order(StringComparer.Ordinal))}) is applied; a reboot is not what it asks for, so it is left alone.",
                $"{ApplyGuidanceFix(host)}; xapi then enables it."));
        }
    }

    /// <summary>A host disabled until its reboot is in the run, and enabled after it (<see cref="HostState.DisabledUntilReboot"/>).</summary>
    private static bool DisabledUntilReboot(HostState host) => host.DisabledUntilReboot;

    private static string DisabledReason(HostState host) =>
        host.EnableRefused
            ? "disabled until its pending guidance is applied (XAPI refuses host.enable), left alone"
            : "disabled by operator, left alone";

    /// <summary>How the operator applies the non-reboot guidance that keeps a host disabled.</summary>
    private static string ApplyGuidanceFix(HostState host) =>
        host.PendingGuidances.Contains("restart_toolstack")
            ? $"restart its toolstack ('xe host-restart-agent host={host.Name}')"
            : $"apply the pending guidance on {host.Name}";

    /// <summary>Hosts named in an operator's list: by uuid first, else by name; a name matching no host blocks.</summary>
    private static bool[] ResolveHostNames(PlanIndex index, IReadOnlyList<string> names, string list, PlanFindings findings)
    {
        var hosts = index.Hosts;
        var found = new bool[hosts.Length];
        foreach (var name in names.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
        {
            bool any = Mark(found, hosts, h => h.Uuid == name) || Mark(found, hosts, h => h.Name == name);
            if (!any)
            {
                findings.Block(new Blocker(
                    PlanCodes.UnknownHost,
                    $"Host '{name}' in the hosts to {list} is not in pool {index.Pool.Name}.",
                    $"Check the name; the pool's hosts are: {string.Join(", ", hosts.Select(x => x.Name))}.",
                    Host: name));
            }
        }

        return found;
    }

    /// <summary>Marks every host that matches; whether any did.</summary>
    private static bool Mark(bool[] found, ImmutableArray<HostState> hosts, Func<HostState, bool> match)
    {
        bool any = false;
        for (int h = 0; h < hosts.Length; h++)
        {
            if (match(hosts[h]))
            {
                found[h] = any = true;
            }
        }

        return any;
    }

    private static string RebootReason(PlanIndex index, int h)
    {
        var host = index.Hosts[h];
        var parts = new List<string>();
        if (h == index.Master)
        {
            parts.Add("pool master, rebooted first");
        }

        if (host.PendingGuidances.Count > 0)
        {
            parts.Add("pending guidance: " + string.Join(", ", host.PendingGuidances.Order(StringComparer.Ordinal)));
        }

        if (DisabledUntilReboot(host))
        {
            parts.Add("disabled until it reboots (XAPI refuses host.enable while mandatory guidance is pending), enabled after its reboot");
        }

        foreach (var (list, guidances) in new[] { ("recommended", host.PendingGuidancesRecommended), ("full", host.PendingGuidancesFull) })
        {
            var reboot = guidances.Where(HostState.IsRebootGuidance).Order(StringComparer.Ordinal).ToList();
            if (reboot.Count > 0)
            {
                parts.Add($"{list} guidance: {string.Join(", ", reboot)}");
            }
        }

        if (host.UpdatesRequiringReboot.Count > 0)
        {
            parts.Add(Invariant($"{host.UpdatesRequiringReboot.Count} update(s) need a reboot") + UpdateList(host));
        }

        if (host.PatchedSinceBoot)
        {
            parts.Add(host.RebootSignals[^1]);
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

        parts.AddRange(host.RebootSignals.Where(x => x.StartsWith("recommended ", StringComparison.Ordinal) || x.StartsWith("full ", StringComparison.Ordinal)));
        if (host.UpdatesRequiringReboot.Count > 0)
        {
            parts.Add(Invariant($"{host.UpdatesRequiringReboot.Count} update(s) need a reboot"));
        }

        if (host.PatchedSinceBoot)
        {
            parts.Add(host.RebootSignals[^1]);
        }

        return parts.Count == 0 ? string.Empty : " (" + string.Join("; ", parts) + ")";
    }
}
