using RollingReboot.Core.Pool;

namespace RollingReboot.Core.Ports;

/// <summary>
/// Installing updates on the pool's hosts (--apply-updates). XenServer 8: its update repository (pool.sync_updates,
/// the /updates handler, host.apply_updates); XCP-ng 8.x: the updater.py host plugin (host.call_plugin), as Xen
/// Orchestra calls it. The adapter knows which; the run does not.
/// </summary>
public interface IPoolUpdates
{
    /// <summary>XenServer: pool.sync_updates (the repository's metadata fetched again); returns the new hash. XCP-ng: nothing (yum reads its repositories at each call): "".</summary>
    Task<string> SyncAsync(CancellationToken cancellationToken = default);

    /// <summary>What each host would install, and the guidance that leaves; hosts not named: every host.</summary>
    Task<PoolUpdates> ReadAsync(IReadOnlyList<string>? hostUuids = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Installs the host's updates and waits until done. XenServer: host.apply_updates(host, hash) (the host disabled,
    /// empty when a reboot or evacuation is asked); the livepatches that failed are returned. XCP-ng: updater.py update,
    /// then other_config rpm_patch_installation_time written as Xen Orchestra does. Never repeated by the adapter.
    /// </summary>
    Task<UpdateApplyResult> ApplyAsync(string hostUuid, string hash, CancellationToken cancellationToken = default);

    /// <summary>Is an installation running on the host now (host.current_operations apply_updates; the updater plugin busy)?</summary>
    Task<bool> IsApplyingAsync(string hostUuid, CancellationToken cancellationToken = default);

    /// <summary>XCP-ng: other_config rpm_patch_installation_time set to now (what Xen Orchestra writes after its update).</summary>
    Task MarkPatchedAsync(string hostUuid, CancellationToken cancellationToken = default);

    /// <summary>host.restart_agent: the toolstack restarts (xapi_host.ml restart_agent); the caller proves it by agent_start_time.</summary>
    Task RestartToolstackAsync(string hostUuid, CancellationToken cancellationToken = default);

    /// <summary>VM.clean_reboot, waiting for its task (the restart_vm guidance).</summary>
    Task RestartVmAsync(string vmUuid, CancellationToken cancellationToken = default);

    /// <summary>VM.restart_device_models (the restart_device_model guidance).</summary>
    Task RestartDeviceModelsAsync(string vmUuid, CancellationToken cancellationToken = default);
}

/// <summary>What an installation reported: livepatches that failed (xapi's APPLY_LIVEPATCH_FAILED warnings), the tool's output.</summary>
public sealed record UpdateApplyResult(IReadOnlyList<string> FailedLivepatches, string? Output = null);
