using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using RollingReboot.Core.Planning;
using RollingReboot.Core.Pool;
using RollingReboot.Core.Run;

namespace RollingReboot.Cli.Output;

/// <summary>
/// The plan for people and for scripts: JSON exactly as the lab contract fixes it ("The plan, machine-readable"),
/// a terminal table, and Markdown for change tickets (with a Mermaid timeline).
/// Over 400 lines on purpose: three renderings of one record kept side by side, so a field added to the plan is
/// seen missing from the others.
/// </summary>
public static class PlanWriter
{
    private static readonly CultureInfo s_inv = CultureInfo.InvariantCulture;
    private static readonly DateTime s_chartOrigin = new(2000, 1, 1, 0, 0, 0, DateTimeKind.Unspecified);

    /// <summary>
    /// The contract's JSON: cluster, pool{uuid,name,master}, hosts[{name,uuid,isMaster,action,reason}] in reboot
    /// order, steps[{host,wave,estimatedSeconds,migrations[{vm,vmUuid,from,to,memoryBytes}]}], blockers[{code,
    /// message,fix,vm?,host?}], warnings, estimate{totalSeconds,migrations,bytes}; plus a few more fields.
    /// </summary>
    public static string ToJson(Plan plan, string clusterName)
    {
        ArgumentNullException.ThrowIfNull(plan);
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("cluster", clusterName);
            w.WriteBoolean("canRun", plan.CanRun);

            w.WriteStartObject("pool");
            w.WriteString("uuid", plan.PoolUuid);
            w.WriteString("name", plan.PoolName);
            w.WriteString("master", plan.MasterName);
            w.WriteString("masterUuid", plan.MasterUuid);
            var sw = plan.Pool.Software;
            w.WriteStartObject("software");
            w.WriteString("productBrand", sw.ProductBrand);
            w.WriteString("productVersion", sw.ProductVersion);
            w.WriteString("platformVersion", sw.PlatformVersion);
            w.WriteString("xapi", sw.Xapi?.ToString(3));
            w.WriteBoolean("guidanceKeepsHostDisabled", sw.GuidanceKeepsHostDisabled);
            w.WriteString("assumed", sw.Describe());
            w.WriteEndObject();
            w.WriteEndObject();

            w.WriteStartArray("hosts");
            foreach (var h in plan.Hosts)
            {
                w.WriteStartObject();
                w.WriteString("name", h.Name);
                w.WriteString("uuid", h.Uuid);
                w.WriteBoolean("isMaster", h.IsMaster);
                w.WriteString("action", h.Action);
                w.WriteString("reason", h.Reason);
                w.WriteEndObject();
            }

            w.WriteEndArray();

            w.WriteStartArray("steps");
            foreach (var s in plan.Steps)
            {
                w.WriteStartObject();
                w.WriteNumber("index", s.Index);
                w.WriteString("host", s.HostName);
                w.WriteString("hostUuid", s.HostUuid);
                w.WriteBoolean("isMaster", s.IsMaster);
                w.WriteNumber("wave", s.Wave);
                w.WriteNumber("startSeconds", Seconds(s.StartSeconds));
                w.WriteNumber("evacuationSeconds", Seconds(s.EvacuationSeconds));
                w.WriteNumber("estimatedSeconds", Seconds(s.EstimatedSeconds));
                WriteMigrations(w, "migrations", s.Migrations);
                if (s.Shutdowns.Count > 0)
                {
                    // --shutdown-pinned-vms: shut down before the host's reboot, started on it again after.
                    w.WriteStartArray("shutdowns");
                    foreach (var p in s.Shutdowns)
                    {
                        w.WriteStartObject();
                        w.WriteString("vm", p.VmName);
                        w.WriteString("vmUuid", p.VmUuid);
                        w.WriteNumber("memoryBytes", p.MemoryBytes);
                        w.WriteString("reason", p.Reason);
                        w.WriteEndObject();
                    }

                    w.WriteEndArray();
                }

                w.WriteEndObject();
            }

            w.WriteEndArray();
            WriteUpdates(w, plan);
            WriteMigrations(w, "returnMigrations", plan.ReturnMigrations);

            w.WriteStartArray("blockers");
            foreach (var b in plan.Blockers)
            {
                w.WriteStartObject();
                w.WriteString("code", b.Code);
                w.WriteString("message", b.Message);
                w.WriteString("fix", b.Fix);
                if (b.Vm is not null)
                {
                    w.WriteString("vm", b.Vm);
                }

                if (b.Host is not null)
                {
                    w.WriteString("host", b.Host);
                }

                w.WriteEndObject();
            }

            w.WriteEndArray();

            w.WriteStartArray("warnings");
            foreach (var x in plan.Warnings)
            {
                w.WriteStartObject();
                w.WriteString("code", x.Code);
                w.WriteString("message", x.Message);
                w.WriteString("fix", x.Fix);
                w.WriteEndObject();
            }

            w.WriteEndArray();

            if (plan.Window is { } window)
            {
                w.WriteStartObject("window");
                w.WriteString("window", window.Window);
                w.WriteBoolean("openNow", window.OpenNow);
                w.WriteString("opens", window.Start.ToString("O", s_inv));
                w.WriteString("ends", window.End.ToString("O", s_inv));
                w.WriteString("text", window.Text);
                w.WriteEndObject();
            }

            w.WriteStartObject("estimate");
            w.WriteNumber("totalSeconds", Seconds(plan.Estimate.TotalSeconds));
            w.WriteNumber("migrations", plan.Estimate.Migrations);
            w.WriteNumber("bytes", plan.Estimate.Bytes);
            w.WriteNumber("memoryBytes", plan.Estimate.MemoryBytes);
            w.WriteNumber("returnSeconds", Seconds(plan.Estimate.ReturnSeconds));
            w.WriteNumber("lowerBoundSeconds", Seconds(PlanEstimator.LowerBoundSeconds(plan)));
            w.WriteEndObject();

            // How long each wait may take before the run gives up on it, from the work (RunOptions' bounds).
            var (largest, migrationBound, haBound, reconnectBound) = Bounds(plan);
            w.WriteStartObject("bounds");
            if (largest is not null)
            {
                w.WriteString("largestMigrationVm", largest.VmName);
                w.WriteNumber("largestMigrationSeconds", Seconds(migrationBound.TotalSeconds));
            }

            w.WriteNumber("haTransitionSeconds", Seconds(haBound.TotalSeconds));
            w.WriteNumber("cloudStackReconnectSeconds", Seconds(reconnectBound.TotalSeconds));
            w.WriteEndObject();

            var o = plan.Options;
            w.WriteStartObject("options");
            w.WriteNumber("threads", o.Threads);
            w.WriteNumber("maxMigrationsPerSource", o.EffectiveMaxMigrationsPerSource);
            w.WriteNumber("maxMigrationsPerTarget", o.EffectiveMaxMigrationsPerTarget);
            w.WriteNumber("staggerSeconds", PlanEstimator.StaggerSeconds(o));
            w.WriteNumber("maxHostsDown", o.MaxHostsDown);
            w.WriteBoolean("onlyNeedingReboot", o.OnlyNeedingReboot);
            w.WriteBoolean("applyUpdates", o.ApplyUpdates);
            w.WriteBoolean("applyVmGuidances", o.ApplyVmGuidances);
            w.WriteBoolean("returnVms", o.ReturnVms);
            w.WriteNumber("rebootSeconds", o.RebootSeconds);
            w.WriteNumber("hostReadySeconds", o.HostReadySeconds);
            w.WriteNumber("shutdownSeconds", o.ShutdownSeconds);
            w.WriteStartObject("migrationModel");
            w.WriteNumber("streamMBps", o.MigrationModel.StreamMBps);
            w.WriteNumber("hostLinkMBps", o.MigrationModel.HostLinkMBps);
            w.WriteNumber("setupSeconds", o.MigrationModel.SetupSeconds);
            w.WriteNumber("dirtyRatio", o.MigrationModel.DirtyRatio);
            w.WriteBoolean("compressed", o.MigrationModel.Compressed);
            if (o.MigrationModel.Compressed)
            {
                w.WriteNumber("compressionRatio", o.MigrationModel.CompressionRatio);
                w.WriteNumber("compressMBps", o.MigrationModel.CompressMBps);
            }

            w.WriteEndObject();
            var route = plan.Route;
            if (route.NetworkUuid is { } networkUuid)
            {
                w.WriteStartObject("migrationNetwork");
                w.WriteString("uuid", networkUuid);
                w.WriteString("name", plan.Pool.FindNetwork(networkUuid)?.Name);
                w.WriteEndObject();
            }
            else
            {
                w.WriteNull("migrationNetwork");
            }

            if (route.Compress is { } compress)
            {
                w.WriteBoolean("compressOption", compress);
            }
            else
            {
                w.WriteNull("compressOption");
            }

            w.WriteEndObject();

            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }

    /// <summary>For a terminal: whether it can run first, then hosts, steps, totals, blockers with fixes, warnings.</summary>
    public static string ToText(Plan plan, string clusterName)
    {
        ArgumentNullException.ThrowIfNull(plan);
        var sb = new StringBuilder();
        sb.Append(s_inv, $"Rolling reboot plan for cluster {clusterName} (pool {plan.PoolName}, master {plan.MasterName})\n");
        sb.Append(Status(plan)).Append("\n\n");

        var rebooting = plan.Hosts.Count(h => h.Action == HostAction.Reboot);
        sb.Append(s_inv, $"HOSTS, in reboot order ({rebooting} to reboot, {plan.Hosts.Count - rebooting} skipped)\n");
        var waveOf = plan.Steps.ToDictionary(s => s.HostUuid, s => s.Wave, StringComparer.Ordinal);
        var rows = new List<string[]> { new[] { "#", "HOST", "ROLE", "ACTION", "WAVE", "REASON" } };
        int n = 0;
        foreach (var h in plan.Hosts)
        {
            bool reboot = h.Action == HostAction.Reboot;
            rows.Add([
                reboot ? (++n).ToString(s_inv) : "-",
                h.Name,
                h.IsMaster ? "master" : "member",
                h.Action,
                waveOf.TryGetValue(h.Uuid, out int wave) ? wave.ToString(s_inv) : "-",
                h.Reason,
            ]);
        }

        Table(sb, rows, "  ");
        UpdatesText(sb, plan);

        if (plan.Steps.Count > 0)
        {
            sb.Append("\nSTEPS\n");
            foreach (var s in plan.Steps)
            {
                long memory = s.Migrations.Sum(m => m.MemoryBytes);
                sb.Append(s_inv, $"  Step {s.Index} (wave {s.Wave}): {s.HostName}{(s.IsMaster ? " (master)" : "")}, starts at +{Units.Duration(s.StartSeconds)}: ")
                  .Append(s_inv, $"{Count(s.Migrations.Count, "migration")} ({Units.Memory(memory)}), evacuate ~{Units.Duration(s.EvacuationSeconds)}, back after ~{Units.Duration(s.EstimatedSeconds)}\n");
                MigrationTable(sb, s.Migrations);
                if (s.Shutdowns.Count > 0)
                {
                    sb.Append(s_inv, $"    shut down for the reboot, started on {s.HostName} again after it: {string.Join(", ", s.Shutdowns.Select(p => $"{p.VmName} ({Units.Memory(p.MemoryBytes)}, {p.Reason})"))}\n");
                }
            }
        }

        if (plan.ReturnMigrations.Count > 0)
        {
            sb.Append(s_inv, $"\nMIGRATE-BACK ({Count(plan.ReturnMigrations.Count, "migration")}, ~{Units.Duration(plan.Estimate.ReturnSeconds)})\n");
            MigrationTable(sb, plan.ReturnMigrations);
        }

        var e = plan.Estimate;
        sb.Append("\nTOTALS\n");
        sb.Append(s_inv, $"  Hosts to reboot: {rebooting}; waves: {plan.Steps.Select(s => s.Wave).Distinct().Count()}; migrations: {e.Migrations}; memory moved: {Units.Memory(e.MemoryBytes)} ({e.Bytes / 1e9:0.0} GB on the wire)\n");
        sb.Append(s_inv, $"  Estimated duration: {Units.Duration(e.TotalSeconds)} (h:mm:ss; no faster than {Units.Duration(PlanEstimator.LowerBoundSeconds(plan))})\n");
        sb.Append(s_inv, $"  Assumptions: {plan.Options.Threads} migrations at once, reboot {plan.Options.RebootSeconds:0} s, link {plan.Options.MigrationModel.HostLinkMBps:0} MB/s per host, stream {plan.Options.MigrationModel.StreamMBps:0} MB/s\n");
        if (RouteLine(plan) is { } routeLine)
        {
            sb.Append(s_inv, $"  Migrations: {routeLine}\n");
        }

        var (largest, migrationBound, haBound, reconnectBound) = Bounds(plan);
        sb.Append(s_inv, $"  Bounds: a migration may take 3x its modelled time, at least {Units.Duration(new RunOptions().MigrationTimeout.TotalSeconds)}{(largest is null ? "" : $" (the largest, {largest.VmName} {Units.Memory(largest.MemoryBytes)}: {Units.Duration(migrationBound.TotalSeconds)})")}; an HA transition {Units.Duration(haBound.TotalSeconds)}; CloudStack's reconnect {Units.Duration(reconnectBound.TotalSeconds)}\n");
        sb.Append(s_inv, $"  Pool software: {plan.Pool.Software.Describe()}\n");
        if (plan.Window is { } window)
        {
            sb.Append(s_inv, $"  Window: {window.Window}: {window.Text}\n");
        }

        if (plan.Blockers.Count > 0)
        {
            sb.Append(s_inv, $"\nBLOCKERS ({plan.Blockers.Count}): the plan cannot run until each is fixed\n");
            int i = 0;
            foreach (var b in plan.Blockers)
            {
                sb.Append(s_inv, $"  {++i}. [{b.Code}] {b.Message}\n");
                sb.Append(s_inv, $"     Fix: {b.Fix}\n");
            }
        }

        if (plan.Warnings.Count > 0)
        {
            sb.Append(s_inv, $"\nWARNINGS ({plan.Warnings.Count})\n");
            foreach (var x in plan.Warnings)
            {
                sb.Append(s_inv, $"  - [{x.Code}] {x.Message}\n");
                sb.Append(s_inv, $"    Fix: {x.Fix}\n");
            }
        }

        return sb.ToString();
    }

    /// <summary>For a change ticket: summary, blockers, warnings, hosts, a Mermaid gantt timeline, the migrations.</summary>
    public static string ToMarkdown(Plan plan, string clusterName)
    {
        ArgumentNullException.ThrowIfNull(plan);
        var sb = new StringBuilder();
        var e = plan.Estimate;
        int rebooting = plan.Hosts.Count(h => h.Action == HostAction.Reboot);
        sb.Append(s_inv, $"# Rolling reboot plan: {Md(clusterName)}\n\n");
        sb.Append(plan.CanRun
            ? "**Status: ready to run.** Nothing blocks this plan.\n\n"
            : string.Create(s_inv, $"**Status: BLOCKED.** {Count(plan.Blockers.Count, "blocker")} must be fixed before this plan can run.\n\n"));

        sb.Append("| | |\n|---|---|\n");
        sb.Append(s_inv, $"| Cluster | {Md(clusterName)} |\n");
        sb.Append(s_inv, $"| Pool | {Md(plan.PoolName)} (`{Md(plan.PoolUuid)}`) |\n");
        sb.Append(s_inv, $"| Master | {Md(plan.MasterName)} |\n");
        sb.Append(s_inv, $"| Hosts to reboot | {rebooting} of {plan.Hosts.Count} |\n");
        sb.Append(s_inv, $"| Hosts down at once | up to {plan.Options.MaxHostsDown} (master alone) |\n");
        sb.Append(s_inv, $"| Migrations | {e.Migrations} ({Units.Memory(e.MemoryBytes)}) |\n");
        sb.Append(s_inv, $"| Estimated duration | {Units.Duration(e.TotalSeconds)} (no faster than {Units.Duration(PlanEstimator.LowerBoundSeconds(plan))}) |\n");
        if (plan.Window is { } window)
        {
            sb.Append(s_inv, $"| Window | {Md(window.Window)}: {Md(window.Text)} |\n");
        }

        if (plan.ReturnMigrations.Count > 0)
        {
            sb.Append(s_inv, $"| Migrate-back | {Count(plan.ReturnMigrations.Count, "migration")}, ~{Units.Duration(e.ReturnSeconds)} |\n");
        }

        UpdatesMarkdown(sb, plan);

        if (plan.Blockers.Count > 0)
        {
            sb.Append("\n## Blockers\n\n| # | Code | Host | VM | Problem | Fix |\n|---|---|---|---|---|---|\n");
            int i = 0;
            foreach (var b in plan.Blockers)
            {
                sb.Append(s_inv, $"| {++i} | `{b.Code}` | {Md(b.Host ?? "")} | {Md(b.Vm ?? "")} | {Md(b.Message)} | {Md(b.Fix)} |\n");
            }
        }

        if (plan.Warnings.Count > 0)
        {
            sb.Append("\n## Warnings\n\n| Code | Warning | Fix |\n|---|---|---|\n");
            foreach (var x in plan.Warnings)
            {
                sb.Append(s_inv, $"| `{x.Code}` | {Md(x.Message)} | {Md(x.Fix)} |\n");
            }
        }

        sb.Append("\n## Hosts, in reboot order\n\n| # | Host | Role | Action | Wave | Reason |\n|---|---|---|---|---|---|\n");
        var waveOf = plan.Steps.ToDictionary(s => s.HostUuid, s => s.Wave, StringComparer.Ordinal);
        int n = 0;
        foreach (var h in plan.Hosts)
        {
            bool reboot = h.Action == HostAction.Reboot;
            string wave = waveOf.TryGetValue(h.Uuid, out int w) ? w.ToString(s_inv) : "";
            sb.Append(s_inv, $"| {(reboot ? (++n).ToString(s_inv) : "")} | {Md(h.Name)} | {(h.IsMaster ? "master" : "member")} | {h.Action} | {wave} | {Md(h.Reason)} |\n");
        }

        if (plan.Steps.Count > 0)
        {
            sb.Append("\n## Estimated timeline\n\n");
            sb.Append("Times are elapsed from the start of the run (the chart's clock starts at 00:00).\n\n");
            sb.Append("```mermaid\ngantt\n    title Estimated timeline per host\n    dateFormat YYYY-MM-DD HH:mm:ss\n    axisFormat %H:%M\n    todayMarker off\n");
            foreach (var s in plan.Steps)
            {
                double evacuated = s.StartSeconds + s.EvacuationSeconds;
                sb.Append(s_inv, $"    section {Mermaid(s.HostName)}{(s.IsMaster ? " (master)" : "")}\n");
                if (s.EvacuationSeconds >= 1)
                {
                    sb.Append(s_inv, $"    evacuate {Count(s.Migrations.Count, "VM")} : {ChartTime(s.StartSeconds)}, {ChartTime(evacuated)}\n");
                }

                sb.Append(s_inv, $"    reboot : {ChartTime(evacuated)}, {ChartTime(s.StartSeconds + s.EstimatedSeconds)}\n");
            }

            if (plan.ReturnMigrations.Count > 0)
            {
                sb.Append(s_inv, $"    section migrate-back\n    {Count(plan.ReturnMigrations.Count, "VM")} home : {ChartTime(e.TotalSeconds - e.ReturnSeconds)}, {ChartTime(e.TotalSeconds)}\n");
            }

            sb.Append("```\n");

            sb.Append("\n## Steps\n");
            foreach (var s in plan.Steps)
            {
                sb.Append(s_inv, $"\n### Step {s.Index}: {Md(s.HostName)}{(s.IsMaster ? " (master)" : "")}, wave {s.Wave}\n\n");
                sb.Append(s_inv, $"Starts at +{Units.Duration(s.StartSeconds)}; evacuation ~{Units.Duration(s.EvacuationSeconds)}; host back after ~{Units.Duration(s.EstimatedSeconds)}.\n\n");
                MigrationMarkdown(sb, s.Migrations);
                if (s.Shutdowns.Count > 0)
                {
                    sb.Append(s_inv, $"\nShut down for the reboot and started on {Md(s.HostName)} again after it: {string.Join(", ", s.Shutdowns.Select(p => $"{Md(p.VmName)} ({Units.Memory(p.MemoryBytes)}, `{p.Reason}`)"))}.\n");
                }
            }
        }

        if (plan.ReturnMigrations.Count > 0)
        {
            sb.Append("\n## Migrate-back\n\n");
            MigrationMarkdown(sb, plan.ReturnMigrations);
        }

        return sb.ToString();
    }

    /// <summary>The run's bounds for this plan: the largest migration's, an HA transition's, CloudStack's reconnect.</summary>
    private static (PlannedMigration? Largest, TimeSpan Migration, TimeSpan Ha, TimeSpan Reconnect) Bounds(Plan plan)
    {
        var run = new RunOptions { Plan = plan.Options };
        var largest = plan.Steps.SelectMany(st => st.Migrations).Concat(plan.ReturnMigrations).MaxBy(m => m.MemoryBytes);
        return (largest, largest is null ? TimeSpan.Zero : run.MigrationBound(largest.MemoryBytes), run.HaBound(plan.Pool.Hosts.Count), run.ReconnectBound(plan.Pool.Hosts.Count));
    }

    private static string Status(Plan plan) => plan.CanRun
        ? "READY: nothing blocks this plan; it can run."
        : string.Create(s_inv, $"BLOCKED: {Count(plan.Blockers.Count, "blocker")} must be fixed before this plan can run (see BLOCKERS below).");

    /// <summary>--apply-updates: each host's updates and what follows them, master first.</summary>
    private static void WriteUpdates(Utf8JsonWriter w, Plan plan)
    {
        if (!plan.Options.ApplyUpdates || plan.Pool.Updates is not { } updates)
        {
            return;
        }

        w.WriteStartObject("updates");
        w.WriteString("source", updates.IsXcpNg ? "updater.py" : "repository");
        w.WriteString("hash", updates.Hash);
        w.WriteStartArray("hosts");
        foreach (var u in plan.UpdatePlan)
        {
            w.WriteStartObject();
            w.WriteString("name", u.HostName);
            w.WriteString("uuid", u.HostUuid);
            w.WriteBoolean("isMaster", u.IsMaster);
            w.WriteString("action", Action(u.Action));
            w.WriteString("why", u.Why);
            Strings(w, "updates", u.Updates.Updates);
            Strings(w, "packages", u.Updates.Packages);
            w.WriteNumber("livepatches", u.Updates.Livepatches);
            w.WriteStartObject("guidance");
            Strings(w, "mandatory", u.Updates.Guidance.Mandatory);
            Strings(w, "recommended", u.Updates.Guidance.Recommended);
            Strings(w, "full", u.Updates.Guidance.Full);
            Strings(w, "livepatch", u.Updates.Guidance.Livepatch);
            w.WriteEndObject();
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void Strings(Utf8JsonWriter w, string name, IReadOnlyList<string> values)
    {
        w.WriteStartArray(name);
        foreach (var v in values)
        {
            w.WriteStringValue(v);
        }

        w.WriteEndArray();
    }

    /// <summary>The update action's name in the plan: reboot, restart-toolstack, in-place, none.</summary>
    private static string Action(UpdateAction action) => action switch
    {
        UpdateAction.Reboot => "reboot",
        UpdateAction.RestartToolstack => "restart-toolstack",
        UpdateAction.InPlace => "in-place",
        _ => "none",
    };

    private static string What(HostUpdatePlan u)
    {
        var x = u.Updates;
        var list = x.Updates.Count > 0 ? x.Updates : x.Packages;
        return list.Count == 0 ? "-" : string.Join(", ", list.Take(6)) + (list.Count > 6 ? string.Create(s_inv, $" (+{list.Count - 6})") : "");
    }

    private static string Guidance(HostUpdatePlan u)
    {
        var g = u.Updates.Guidance;
        var parts = new List<string>();
        if (g.Mandatory.Count > 0)
        {
            parts.Add("mandatory " + string.Join(",", g.Mandatory));
        }

        if (g.Recommended.Count > 0)
        {
            parts.Add("recommended " + string.Join(",", g.Recommended));
        }

        if (g.Livepatch.Count > 0 || u.Updates.Livepatches > 0)
        {
            parts.Add(string.Create(s_inv, $"{u.Updates.Livepatches} livepatch(es)"));
        }

        return parts.Count == 0 ? "-" : string.Join("; ", parts);
    }

    private static void UpdatesText(StringBuilder sb, Plan plan)
    {
        if (!plan.Options.ApplyUpdates || plan.Pool.Updates is not { } updates)
        {
            return;
        }

        var list = plan.UpdatePlan;
        sb.Append(s_inv, $"\nUPDATES ({(updates.IsXcpNg ? "XCP-ng updater.py plugin" : "XenServer update repository, as last synced; --exec syncs it first")}; master first)\n");
        var rows = new List<string[]> { new[] { "HOST", "INSTALL", "GUIDANCE", "THEN" } };
        foreach (var u in list)
        {
            rows.Add([u.HostName + (u.IsMaster ? " (master)" : ""), What(u), Guidance(u), UpdatePlanning.Describe(u.Action)]);
        }

        Table(sb, rows, "  ");
        sb.Append(s_inv, $"  {list.Count(u => u.Action == UpdateAction.Reboot)} rebooted, {list.Count(u => u.Action == UpdateAction.RestartToolstack)} toolstack restart only, {list.Count(u => u.Action == UpdateAction.InPlace)} in place, {list.Count(u => u.Action == UpdateAction.None)} left alone\n");
    }

    private static void UpdatesMarkdown(StringBuilder sb, Plan plan)
    {
        if (!plan.Options.ApplyUpdates || plan.Pool.Updates is null)
        {
            return;
        }

        sb.Append("\n## Updates (master first)\n\n| Host | Install | Guidance | Then | Why |\n|---|---|---|---|---|\n");
        foreach (var u in plan.UpdatePlan)
        {
            sb.Append(s_inv, $"| {Md(u.HostName)}{(u.IsMaster ? " (master)" : "")} | {Md(What(u))} | {Md(Guidance(u))} | {Md(UpdatePlanning.Describe(u.Action))} | {Md(u.Why)} |\n");
        }
    }

    private static void WriteMigrations(Utf8JsonWriter w, string name, IReadOnlyList<PlannedMigration> migrations)
    {
        w.WriteStartArray(name);
        foreach (var m in migrations)
        {
            w.WriteStartObject();
            w.WriteString("vm", m.VmName);
            w.WriteString("vmUuid", m.VmUuid);
            w.WriteString("from", m.FromName);
            w.WriteString("fromUuid", m.FromUuid);
            w.WriteString("to", m.ToName);
            w.WriteString("toUuid", m.ToUuid);
            w.WriteNumber("memoryBytes", m.MemoryBytes);
            if (m.Rule is { } rule)
            {
                w.WriteString("rule", rule);
            }

            w.WriteEndObject();
        }

        w.WriteEndArray();
    }

    private static void MigrationTable(StringBuilder sb, IReadOnlyList<PlannedMigration> migrations)
    {
        if (migrations.Count == 0)
        {
            sb.Append("    (no running VMs to move)\n");
            return;
        }

        bool rules = migrations.Any(m => m.Rule is not null);
        var rows = new List<string[]> { rules ? ["VM", "FROM", "TO", "MEMORY", "RULE"] : ["VM", "FROM", "TO", "MEMORY"] };
        rows.AddRange(migrations.Select(m => rules
            ? new[] { m.VmName, m.FromName, m.ToName, Units.Memory(m.MemoryBytes), m.Rule ?? "" }
            : new[] { m.VmName, m.FromName, m.ToName, Units.Memory(m.MemoryBytes) }));
        Table(sb, rows, "    ");
    }

    private static void MigrationMarkdown(StringBuilder sb, IReadOnlyList<PlannedMigration> migrations)
    {
        if (migrations.Count == 0)
        {
            sb.Append("No running VMs to move.\n");
            return;
        }

        bool rules = migrations.Any(m => m.Rule is not null);
        sb.Append(rules ? "| VM | From | To | Memory | Rule |\n|---|---|---|---|---|\n" : "| VM | From | To | Memory |\n|---|---|---|---|\n");
        foreach (var m in migrations)
        {
            sb.Append(s_inv, $"| {Md(m.VmName)} | {Md(m.FromName)} | {Md(m.ToName)} | {Units.Memory(m.MemoryBytes)} |{(rules ? $" {Md(m.Rule ?? "")} |" : "")}\n");
        }
    }

    private static void Table(StringBuilder sb, List<string[]> rows, string indent)
    {
        int columns = rows[0].Length;
        var widths = new int[columns];
        foreach (var row in rows)
        {
            for (int c = 0; c < columns; c++)
            {
                widths[c] = Math.Max(widths[c], row[c].Length);
            }
        }

        foreach (var row in rows)
        {
            sb.Append(indent);
            for (int c = 0; c < columns; c++)
            {
                sb.Append(c == columns - 1 ? row[c] : row[c].PadRight(widths[c] + 2));
            }

            sb.Append('\n');
        }
    }

    private static double Seconds(double seconds) => double.IsFinite(seconds) ? Math.Round(seconds, 1) : -1;

    private static string Count(int count, string noun) => string.Create(s_inv, $"{count} {noun}{(count == 1 ? "" : "s")}");

    private static string ChartTime(double seconds) =>
        s_chartOrigin.AddSeconds(double.IsFinite(seconds) ? Math.Ceiling(Math.Max(0, seconds) - 1e-9) : 0).ToString("yyyy-MM-dd HH:mm:ss", s_inv);

    /// <summary>Text safe in a Markdown table cell.</summary>
    private static string Md(string text) =>
        text.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("|", "\\|", StringComparison.Ordinal)
            .Replace("\r", " ", StringComparison.Ordinal).Replace("\n", " ", StringComparison.Ordinal);

    /// <summary>Text safe as a Mermaid gantt section or task name (no colon, semicolon or hash).</summary>
    private static string Mermaid(string text) =>
        new([.. text.Select(c => c is ':' or ';' or '#' or '\r' or '\n' ? ' ' : c)]);
    /// <summary>How migrations travel, when the operator chose it or the pool compresses: null for the plain default.</summary>
    private static string? RouteLine(Plan plan)
    {
        var o = plan.Options;
        var model = o.MigrationModel;
        if (o.MigrationNetwork is null && o.Compress is null && !model.Compressed)
        {
            return null;
        }

        var network = o.MigrationNetwork is null
            ? "over the management network"
            : plan.Pool.FindNetwork(o.MigrationNetwork) is { } n
                ? string.Create(s_inv, $"over network {n.Name} ({n.Bridge}; link {model.HostLinkMBps:0} MB/s per host{(o.LinkAssumed ? ", assumed" : n.SlowestSpeedMbps is { } mbps ? string.Create(s_inv, $", from its PIFs' {mbps:0} Mbit/s") : ", assumed")})")
                : $"over network {o.MigrationNetwork} (not found)";
        var compression = model.Compressed
            ? string.Create(s_inv, $"stream compressed ({(o.Compress is true ? "--compress" : "the pool's migration_compression")}; assumed {model.CompressionRatio:0.##} of the bytes on the wire, {model.CompressMBps:0} MB/s a stream before compression)")
            : o.Compress is false ? "not compressed (--compress false)" : "not compressed";
        return network + "; " + compression;
    }
}
