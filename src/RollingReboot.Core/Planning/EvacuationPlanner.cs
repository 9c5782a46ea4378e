using RollingReboot.Core.Pool;

namespace RollingReboot.Core.Planning;

/// <summary>
/// Plans a rolling reboot: which hosts reboot in which order, where every running VM goes before its host
/// reboots, what blocks the run and how long it should take. Pure and deterministic: the same snapshot, options
/// and constraints give the same plan, whatever the order of the snapshot's lists.
/// </summary>
/// <remarks>
/// Rules: the master goes first (when it reboots); a VM is only ever moved onto a host that is already rebooted
/// or is not part of the run, except the master's VMs, which go to the hosts evacuated last (nothing is rebooted
/// yet) and so move at most twice. Free memory is checked at every placement; host anti-affinity groups are never
/// put together. Every problem is reported at once: planning goes on after a blocker.
/// </remarks>
public static class EvacuationPlanner
{
    public static Plan Plan(PoolSnapshot pool, PlanOptions options, PlanConstraints constraints)
    {
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(constraints);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Threads, 1, nameof(options));
        ArgumentOutOfRangeException.ThrowIfNegative(options.MaxMigrationsPerSource, nameof(options));
        ArgumentOutOfRangeException.ThrowIfNegative(options.MaxMigrationsPerTarget, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxHostsDown, 1, nameof(options));
        if (options.MigrationModel.StreamMBps <= 0 || options.MigrationModel.HostLinkMBps <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "migration bandwidths must be positive");
        }

        return new PlanBuilder(pool, options, constraints).Build();
    }
}
