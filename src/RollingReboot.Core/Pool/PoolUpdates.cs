using System.Collections.Immutable;

namespace RollingReboot.Core.Pool;

/// <summary>
/// The guidances an update leaves, in the four lists xapi keeps (xen-api ocaml/xapi/updateinfo.ml Guidance.kind:
/// mandatory, recommended, full, livepatch), each as host.pending_guidances spells them (reboot_host, restart_toolstack,
/// restart_device_model, restart_vm, reboot_host_on_*_livepatch_failure; evacuate_host for UpdateInfo's EvacuateHost,
/// which xapi never sets as pending: repository.ml apply_updates' drops it).
/// </summary>
public sealed record UpdateGuidance(IReadOnlyList<string> Mandatory, IReadOnlyList<string> Recommended, IReadOnlyList<string> Full, IReadOnlyList<string> Livepatch)
{
    public static UpdateGuidance None { get; } = new([], [], [], []);

    /// <summary>What the run acts on: mandatory and recommended (full is only shown).</summary>
    public IEnumerable<string> Acted => Mandatory.Concat(Recommended).Distinct(StringComparer.Ordinal);

    /// <summary>Each of xapi's UpdateInfo guidance names (RebootHost, ...) as the host field spells it (reboot_host, ...).</summary>
    public static string FromUpdateInfo(string name) => name switch
    {
        "RebootHost" => "reboot_host",
        "RestartToolstack" => "restart_toolstack",
        "EvacuateHost" => "evacuate_host",
        "RestartDeviceModel" => "restart_device_model",
        "RestartVM" => "restart_vm",
        "RebootHostOnLivePatchFailure" => "reboot_host_on_livepatch_failure",
        "RebootHostOnKernelLivePatchFailure" => "reboot_host_on_kernel_livepatch_failure",
        "RebootHostOnXenLivePatchFailure" => "reboot_host_on_xen_livepatch_failure",
        // updateinfo.ml Guidance.of_string: an unknown guidance falls back to RebootHost.
        _ => "reboot_host",
    };
}

/// <summary>What a host has to install: update ids (XenServer's updateinfo) or package names (XCP-ng's yum), the
/// packages, and the guidance xapi predicts the installation leaves (XenServer; XCP-ng has none).</summary>
public sealed record HostUpdates(string HostUuid, IReadOnlyList<string> Updates, IReadOnlyList<string> Packages, UpdateGuidance Guidance, int Livepatches)
{
    public bool Any => Updates.Count > 0 || Packages.Count > 0 || Livepatches > 0;
}

/// <summary>
/// The pool's updates as read before the plan: XenServer's repository (pool.sync_updates, then /updates: xapi_pool.ml
/// get_updates_handler, repository.ml get_pool_updates_in_json, with the hash host.apply_updates must be given), or
/// XCP-ng's updater.py plugin per host (check_update, as Xen Orchestra lists them).
/// </summary>
public sealed record PoolUpdates(string Hash, bool IsXcpNg, IReadOnlyDictionary<string, HostUpdates> Hosts)
{
    /// <summary>Update id to its summary, for the plan.</summary>
    public IReadOnlyDictionary<string, string> Summaries { get; init; } = ImmutableDictionary<string, string>.Empty;

    public HostUpdates For(string hostUuid) => Hosts.GetValueOrDefault(hostUuid) ?? new HostUpdates(hostUuid, [], [], UpdateGuidance.None, 0);
}

/// <summary>What the run does to a host under --apply-updates.</summary>
public enum UpdateAction
{
    /// <summary>Nothing to install and nothing pending: left alone.</summary>
    None,

    /// <summary>Installed in place (disabled, not evacuated), no restart: a livepatch covers it, or nothing is asked.</summary>
    InPlace,

    /// <summary>Installed in place, then host.restart_agent (no evacuation, no reboot).</summary>
    RestartToolstack,

    /// <summary>Evacuated, installed while empty and disabled, rebooted.</summary>
    Reboot,
}

/// <summary>One host's line of the update plan.</summary>
public sealed record HostUpdatePlan(string HostUuid, string HostName, bool IsMaster, HostUpdates Updates, UpdateAction Action, string Why);

/// <summary>
/// Which hosts need what (issue: reboot only what must reboot). XenServer: the guidance xapi predicts for the host's
/// updates, mandatory and recommended: reboot_host, evacuate_host or a livepatch-failure reboot: evacuate and reboot;
/// restart_toolstack only: restart the toolstack in place; anything else (a livepatch applied, restart_device_model or
/// restart_vm, which apply to VMs): install in place. A host already asking for a reboot is rebooted. XCP-ng: any
/// package to install means a reboot (Xen Orchestra's rolling pool update reboots every host it patched).
/// </summary>
public static class UpdatePlanning
{
    public static IReadOnlyList<HostUpdatePlan> Decide(PoolSnapshot pool)
    {
        ArgumentNullException.ThrowIfNull(pool);
        if (pool.Updates is not { } updates)
        {
            return [];
        }

        return pool.Hosts
            .OrderBy(h => h.Uuid == pool.MasterUuid ? 0 : 1)
            .ThenBy(h => h.Name, StringComparer.Ordinal)
            .Select(h => For(h, updates.For(h.Uuid), updates.IsXcpNg, h.Uuid == pool.MasterUuid))
            .ToList();
    }

    public static HostUpdatePlan For(HostState host, HostUpdates u, bool xcpNg, bool isMaster)
    {
        ArgumentNullException.ThrowIfNull(host);
        ArgumentNullException.ThrowIfNull(u);
        var acted = u.Guidance.Acted.ToList();
        var pending = host.PendingGuidances.Concat(host.PendingGuidancesRecommended).ToList();
        var (action, why) = true switch
        {
            _ when xcpNg && u.Packages.Count > 0 => (UpdateAction.Reboot, $"{u.Packages.Count} package(s) to install: XCP-ng has no guidance, its hosts reboot after yum"),
            _ when acted.Any(g => HostState.IsRebootGuidance(g) || g == "evacuate_host") && u.Any => (UpdateAction.Reboot, "its updates ask for " + string.Join(", ", acted.Where(g => HostState.IsRebootGuidance(g) || g == "evacuate_host"))),
            _ when host.NeedsReboot => (UpdateAction.Reboot, "already needs a reboot: " + string.Join("; ", host.RebootSignals)),
            _ when u.Any && (acted.Contains("restart_toolstack") || pending.Contains("restart_toolstack")) => (UpdateAction.RestartToolstack, "its updates ask for restart_toolstack only: installed in place, toolstack restarted, not rebooted"),
            _ when pending.Contains("restart_toolstack") => (UpdateAction.RestartToolstack, "restart_toolstack is pending: toolstack restarted, not rebooted"),
            _ when u.Any && u.Livepatches > 0 => (UpdateAction.InPlace, $"{u.Livepatches} livepatch(es) cover its reboot: installed in place, not rebooted"),
            _ when u.Any => (UpdateAction.InPlace, acted.Count == 0 ? "its updates ask for no restart: installed in place" : $"its updates ask for {string.Join(", ", acted)} (VMs): installed in place"),
            _ => (UpdateAction.None, "nothing to install"),
        };
        return new HostUpdatePlan(host.Uuid, host.Name, isMaster, u, action, why);
    }

    public static string Describe(UpdateAction action) => action switch
    {
        UpdateAction.Reboot => "install while empty, reboot",
        UpdateAction.RestartToolstack => "install in place, restart toolstack",
        UpdateAction.InPlace => "install in place",
        _ => "left alone",
    };
}
