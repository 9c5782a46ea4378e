using RollingReboot.Core.Pool;
using RollingReboot.Core.Ports;
using RollingReboot.Core.Run.Engine;
using RollingReboot.Core.Run.Journal;
using RollingReboot.Core.Run.State;
using static RollingReboot.Core.Run.Engine.StepResult;

namespace RollingReboot.Core.Run.Steps;

/// <summary>A host back from its reboot is left enabled or disabled exactly as it was before the run.</summary>
public static class HostEnabling
{
    /// <summary>The one code the run acts on by name: xapi refuses host.enable while mandatory guidance is pending
    /// (ocaml/xapi/xapi_host.ml, enable; ocaml/xapi-consts/api_errors.ml host_pending_mandatory_guidances_not_empty,
    /// whose text is singular: HOST_PENDING_MANDATORY_GUIDANCE_NOT_EMPTY, v24.10.0 to v26.17.0).</summary>
    public const string PendingMandatoryGuidances = "HOST_PENDING_MANDATORY_GUIDANCE_NOT_EMPTY";

    public static async Task<StepResult> AfterRebootAsync(RunContext run, HostState host, CancellationToken abort)
    {
        // A host disabled until its reboot (mandatory reboot guidance, xapi 24.10.0+) is enabled after it, like one enabled before.
        var wasEnabled = run.State.WasEnabled(host.Uuid) || run.State.EnableAfterReboot(host.Uuid);
        // Both are reads: the host's state is asked while its storage is checked, not after.
        var first = run.Executor.ReadAsync(ct => run.Pool.ReadHostAsync(host.Uuid, ct), abort);
        try
        {
            if (wasEnabled && await StorageAsync(run, host, abort) is { } stop)
            {
                return stop;
            }
        }
        finally
        {
            // Observed whatever happens, so a failure of the unused read is not left unobserved.
            await first.Settled();
        }

        var deadline = run.Clock.GetUtcNow() + run.Options.HostTimeout;
        var firstRound = true;
        while (true)
        {
            // The read made beside the storage check first (a plug does not change enabled), then fresh ones.
            var h = firstRound ? await first : await run.Executor.ReadAsync(ct => run.Pool.ReadHostAsync(host.Uuid, ct), abort);
            firstRound = false;
            if (!wasEnabled)
            {
                if (h.Enabled)
                {
                    // It was disabled by the operator before the run: leave it as it was. Not the run's to enable again.
                    await run.Executor.DoAsync(null, ct => run.Pool.DisableHostAsync(host.Uuid, ct), null, abort);
                }

                run.Executor.Record(new HostEnabled(host.Uuid));
                return Continue;
            }

            if (h.Enabled)
            {
                // xapi enabled it itself after the boot.
                run.Executor.Record(new HostEnabled(host.Uuid));
                return Continue;
            }

            try
            {
                await run.Executor.DoAsync(new HostEnableIntended(host.Uuid, host.Name), ct => run.Pool.EnableHostAsync(host.Uuid, ct), new HostEnabled(host.Uuid), abort);
                return Continue;
            }
            catch (PoolOperationException e) when (e.Code == PendingMandatoryGuidances)
            {
                // xapi raises it with the host's ref alone (repository_helpers.ml assert_no_host_pending_mandatory_guidance):
                // what is pending is in the host record.
                var pending = h.PendingGuidances.Count > 0 ? string.Join(", ", h.PendingGuidances) : "see host.pending_guidances";
                return new Stop($"{host.Name} came back disabled with mandatory guidance pending ({pending})", NeedsOperator: true,
                    $"apply the pending guidance on {host.Name} (e.g. another reboot or toolstack restart), 'xe host-enable host={host.Name}', then 'rollreboot resume --clustername {run.ClusterLabel}'");
            }
            catch (PoolOperationException e) when ((e.Kind == PoolErrorKind.Busy || e.Code == "HOST_STILL_BOOTING") && run.Clock.GetUtcNow() < deadline)
            {
                await run.Pool.WaitForChangeAsync(TimeSpan.FromSeconds(10), abort);
            }
        }
    }

    /// <summary>
    /// A rebooted host becomes a migration target only once it sees every shared SR. xapi plugs each PBD at start
    /// (ocaml/xapi/create_storage.ml plug_unplugged_pbds) and, with HA off as during the run, enables the host even when a
    /// plug failed (ocaml/xapi/xapi_host_helpers.ml consider_enabling_host_nolock checks PBDs only if HA is armed); VMs
    /// sent there would fail with VM_REQUIRES_SR (ocaml/xapi/xapi_vm_helpers.ml assert_can_see_SRs). The run plugs each
    /// missing one once (what XenCenter's "Repair storage" does); a host that still cannot see one is kept disabled and
    /// the run stops for an operator, every VM still running elsewhere.
    /// </summary>
    private static async Task<StepResult?> StorageAsync(RunContext run, HostState host, CancellationToken abort)
    {
        var missing = await run.Executor.ReadAsync(ct => run.Pool.ReadUnpluggedSharedSrsAsync(host.Uuid, ct), abort);
        if (missing.Count == 0)
        {
            return null;
        }

        var failures = new List<string>();
        foreach (var sr in missing)
        {
            run.Log.Warn("{Host}: back without shared SR {Sr} (its PBD is not plugged); plugging it", host.Name, sr.Name);
            try
            {
                await run.Executor.DoAsync(new HostSrPlugIntended(host.Uuid, sr.Uuid, sr.Name), ct => run.Pool.PlugSrAsync(host.Uuid, sr.Uuid, ct), new HostSrPlugged(host.Uuid, sr.Uuid), abort);
            }
            catch (PoolOperationException e)
            {
                failures.Add($"{sr.Name}: {e.Code}");
            }
        }

        var still = await run.Executor.ReadAsync(ct => run.Pool.ReadUnpluggedSharedSrsAsync(host.Uuid, ct), abort);
        if (still.Count == 0)
        {
            run.Log.Info("{Host}: every shared SR plugged", host.Name);
            return null;
        }

        var h = await run.Executor.ReadAsync(ct => run.Pool.ReadHostAsync(host.Uuid, ct), abort);
        if (h.Enabled)
        {
            // xapi enabled it itself: nothing may be placed on a host that cannot reach the VMs' disks.
            await run.Executor.DoAsync(null, ct => run.Pool.DisableHostAsync(host.Uuid, ct), null, abort);
        }

        var names = string.Join(", ", still.Select(s => s.Name));
        var why = failures.Count > 0 ? $" (PBD.plug: {string.Join("; ", failures)})" : string.Empty;
        return new Stop($"{host.Name} came back but cannot see shared SR {names}{why}; it is kept disabled so no VM is sent there", NeedsOperator: true,
            $"repair {host.Name}'s storage ('xe pbd-plug uuid=<PBD of {names} on {host.Name}>', or Repair Storage in XenCenter), then 'rollreboot resume --clustername {run.ClusterLabel}'");
    }

    /// <summary>
    /// What a host the run may have left disabled needs now (restore, resume, a host the pre hook skipped), read from its
    /// live record: never a host.enable that XAPI will refuse (pending mandatory guidance on xapi 24.10.0+), and a host
    /// disabled until its reboot stays so until it is rebooted.
    /// </summary>
    public static PutBack Decide(RunState state, HostState h)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(h);
        var untilReboot = state.EnableAfterReboot(h.Uuid);
        if (untilReboot && !state.Rebooted.Contains(h.Uuid))
        {
            return h.Enabled
                ? new PutBack(PutBackAction.AsItWas, null)
                : new PutBack(PutBackAction.UntilReboot,
                    $"host {h.Name} left disabled, as it was before the run: mandatory guidance {Guidances(h)} is pending and XAPI refuses host.enable until the host reboots; xapi enables it after its reboot (reboot it with 'rollreboot resume', or by hand)");
        }

        var wanted = state.WasEnabled(h.Uuid) || untilReboot;
        if (h.Enabled == wanted)
        {
            return new PutBack(PutBackAction.AsItWas, null);
        }

        if (!wanted)
        {
            return new PutBack(PutBackAction.Disable, null);
        }

        if (h.UnpluggedSharedSrs.Count > 0)
        {
            var names = string.Join(", ", h.UnpluggedSharedSrs.Select(s => s.Name));
            return new PutBack(PutBackAction.Refused,
                $"host {h.Name} stays disabled: it cannot see shared SR {names} (its PBD is not plugged), so VMs sent there would fail; repair its storage ('xe pbd-plug', or Repair Storage in XenCenter), then 'xe host-enable host={h.Name}'");
        }

        return h.EnableRefused
            ? new PutBack(PutBackAction.Refused,
                $"host {h.Name} stays disabled: mandatory guidance {Guidances(h)} is pending and XAPI refuses host.enable until it is applied; {ApplyFix(h)}")
            : new PutBack(PutBackAction.Enable, null);
    }

    private static string Guidances(HostState h) => string.Join(", ", h.PendingGuidances.Order(StringComparer.Ordinal));

    /// <summary>How the guidance is applied: a reboot clears reboot guidances, any toolstack start restart_toolstack (ocaml/xapi/dbsync_slave.ml).</summary>
    internal static string ApplyFix(HostState h) =>
        h.PendingGuidances.All(HostState.IsRebootGuidance) || h.RebootGuidancePending
            ? $"reboot it ('xe host-reboot host={h.Name}' once it is empty, or 'rollreboot resume'); xapi enables it after the reboot"
            : h.PendingGuidances.Contains("restart_toolstack")
                ? $"restart its toolstack ('xe host-restart-agent host={h.Name}'); xapi enables it when the toolstack is back"
                : $"apply the pending guidance on {h.Name}, then 'xe host-enable host={h.Name}'";
}

public enum PutBackAction
{
    /// <summary>Enabled or disabled as it was before the run: nothing to do.</summary>
    AsItWas,

    Enable,

    /// <summary>Disabled again: the operator had it so before the run.</summary>
    Disable,

    /// <summary>It should be enabled, but XAPI refuses host.enable: an operator applies the guidance.</summary>
    Refused,

    /// <summary>Disabled until its reboot, as it was before the run, and not rebooted: it stays so.</summary>
    UntilReboot,
}

/// <summary>What <see cref="HostEnabling.Decide"/> found, and why when the host stays disabled.</summary>
public sealed record PutBack(PutBackAction Action, string? Why);
