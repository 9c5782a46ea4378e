using RollingReboot.Core.Pool;
using RollingReboot.Core.Ports;
using RollingReboot.Core.Run.Engine;
using RollingReboot.Core.Run.Journal;
using static RollingReboot.Core.Run.Engine.StepResult;

namespace RollingReboot.Core.Run.Steps;

/// <summary>A host back from its reboot is left enabled or disabled exactly as it was before the run.</summary>
public static class HostEnabling
{
    /// <summary>The one code the run acts on by name: xapi refuses host.enable while mandatory guidance is pending
    /// (ocaml/xapi/xapi_host.ml, enable; ocaml/xapi-consts/api_errors.ml).</summary>
    public const string PendingMandatoryGuidances = "HOST_PENDING_MANDATORY_GUIDANCES_NOT_EMPTY";

    public static async Task<StepResult> AfterRebootAsync(RunContext run, HostState host, CancellationToken abort)
    {
        var wasEnabled = run.State.WasEnabled(host.Uuid);
        var deadline = run.Clock.GetUtcNow() + run.Options.HostTimeout;
        while (true)
        {
            var h = await run.Executor.ReadAsync(ct => run.Pool.ReadHostAsync(host.Uuid, ct), abort);
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
}
