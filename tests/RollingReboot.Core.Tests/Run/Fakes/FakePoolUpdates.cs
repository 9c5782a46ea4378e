using RollingReboot.Core.Pool;
using RollingReboot.Core.Ports;

namespace RollingReboot.Core.Tests.Run.Fakes;

/// <summary>
/// The fake pool's updates (--apply-updates), with the rules of xapi the run relies on (xen-api ocaml/xapi/xapi_host.ml
/// apply_updates, repository.ml apply_updates): HA must be off, the host is disabled first, a host whose updates ask
/// for a reboot or an evacuation must be empty (HOST_EVACUATION_IS_REQUIRED), an installed update is gone from the
/// host's list and leaves its guidance pending; restart_agent clears restart_toolstack and moves agent_start_time.
/// </summary>
internal sealed partial class FakePool
{
    /// <summary>Each host's pending updates: id to the mandatory guidance it leaves.</summary>
    public Dictionary<string, Dictionary<string, string[]>> PendingUpdates { get; } = new(StringComparer.Ordinal);

    /// <summary>host.apply_updates calls that installed something, host uuid each time, in order.</summary>
    public List<string> Applied { get; } = [];

    /// <summary>The next apply on this host fails with APPLY_UPDATES_FAILED.</summary>
    public HashSet<string> ApplyFails { get; } = new(StringComparer.Ordinal);

    /// <summary>Toolstack restarts asked, host uuid each time.</summary>
    public List<string> ToolstackRestarts { get; } = [];

    public bool HasUpdates { get; set; }

    /// <summary>pool.sync_updates never returns (a repository that does not answer).</summary>
    public bool SyncHangs { get; set; }

    public IPoolUpdates? Updates => HasUpdates ? new FakeUpdates(this) : null;

    private sealed class FakeUpdates(FakePool pool) : IPoolUpdates
    {
        public async Task<string> SyncAsync(CancellationToken cancellationToken = default)
        {
            if (pool.SyncHangs)
            {
                // The repository never answers: time passes (the fake clock moves only when asked) and the caller's bound fires.
                var fake = (Microsoft.Extensions.Time.Testing.FakeTimeProvider)pool.Clock;
                fake.Advance(TimeSpan.FromHours(3));
                await Task.Delay(Timeout.InfiniteTimeSpan, fake, cancellationToken);
            }

            return await pool.Locked(() => "hash-1");
        }

        public Task<PoolUpdates> ReadAsync(IReadOnlyList<string>? hostUuids = null, CancellationToken cancellationToken = default) => pool.Locked(() =>
        {
            var hosts = pool.Hosts.Where(h => hostUuids is null || hostUuids.Contains(h.Uuid)).ToDictionary(h => h.Uuid, h =>
            {
                var pending = pool.PendingUpdates.GetValueOrDefault(h.Uuid) ?? [];
                var mandatory = pending.Values.SelectMany(g => g).Distinct(StringComparer.Ordinal).ToList();
                if (mandatory.Contains("reboot_host"))
                {
                    mandatory.RemoveAll(g => g is "restart_toolstack" or "evacuate_host");
                }

                return new HostUpdates(h.Uuid, [.. pending.Keys.Order(StringComparer.Ordinal)], [], new UpdateGuidance(mandatory, [], [], []), 0);
            }, StringComparer.Ordinal);
            return new PoolUpdates("hash-1", false, hosts);
        });

        public Task<UpdateApplyResult> ApplyAsync(string hostUuid, string hash, CancellationToken cancellationToken = default) => pool.Locked(() =>
        {
            if (pool.Ha.Enabled)
            {
                throw Refused("HA_IS_ENABLED");
            }

            var h = pool.H(hostUuid);
            h.Enabled = false;
            var pending = pool.PendingUpdates.GetValueOrDefault(hostUuid) ?? [];
            if (pending.Count == 0)
            {
                return new UpdateApplyResult([]);
            }

            var guidance = pending.Values.SelectMany(g => g).Distinct(StringComparer.Ordinal).ToList();
            if (guidance.Any(g => g is "reboot_host" or "evacuate_host") && pool.Vms.Any(v => v.Running && v.Host == hostUuid))
            {
                throw Refused("HOST_EVACUATION_IS_REQUIRED", hostUuid);
            }

            if (pool.ApplyFails.Remove(hostUuid))
            {
                throw Refused("APPLY_UPDATES_FAILED", hostUuid);
            }

            pool.Applied.Add(hostUuid);
            pending.Clear();
            if (guidance.Contains("reboot_host"))
            {
                guidance.RemoveAll(g => g is "restart_toolstack");
            }

            foreach (var g in guidance.Where(g => g != "evacuate_host" && !h.Guidances.Contains(g)))
            {
                h.Guidances.Add(g);
            }

            return new UpdateApplyResult([]);
        });

        public Task<bool> IsApplyingAsync(string hostUuid, CancellationToken cancellationToken = default) => pool.Locked(() => false);

        public Task MarkPatchedAsync(string hostUuid, CancellationToken cancellationToken = default) => pool.Locked(() => true);

        public Task RestartToolstackAsync(string hostUuid, CancellationToken cancellationToken = default) => pool.Locked(() =>
        {
            var h = pool.H(hostUuid);
            pool.ToolstackRestarts.Add(hostUuid);
            h.AgentStart = pool.Now().AddSeconds(1);
            h.Guidances.Remove("restart_toolstack");
            return true;
        });

        public Task RestartVmAsync(string vmUuid, CancellationToken cancellationToken = default) => pool.Locked(() => true);

        public Task RestartDeviceModelsAsync(string vmUuid, CancellationToken cancellationToken = default) => pool.Locked(() => true);
    }

    private DateTimeOffset Now() => clock.GetUtcNow();

    private TimeProvider Clock => clock;

    private Task<T> Locked<T>(Func<T> f)
    {
        lock (_lock)
        {
            Check();
            return Task.FromResult(f());
        }
    }
}
