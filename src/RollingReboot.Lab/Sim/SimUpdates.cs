using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using RollingReboot.Lab.Scenario;

namespace RollingReboot.Lab.Sim;

/// <summary>
/// The update workflow of both products, modelled on what their sources do (paths of xapi-project/xen-api below ocaml/,
/// of xcp-ng/xcp-ng-xapi-plugins below SOURCES/etc/xapi.d/plugins/):
/// <list type="bullet">
/// <item>XenServer 8: pool.sync_updates (xapi/xapi_pool.ml sync_updates, xapi/repository.ml set_available_updates), the
/// HTTP handler GET /updates (xapi/xapi_pool.ml get_updates_handler, xapi/repository.ml get_pool_updates_in_json), and
/// host.apply_updates (xapi/xapi_host.ml apply_updates, xapi/repository.ml apply_updates and apply_updates',
/// xapi/repository_helpers.ml reduce_guidance, set_pending_guidances, update_livepatch_failure_guidance).</item>
/// <item>XCP-ng: host.call_plugin "updater.py" check_update / update (updater.py, xcpngutils/__init__.py error_wrapped,
/// run_command; the plugin's answer as xapi/xapi_plugins.ml call_plugin passes it on).</item>
/// </list>
/// </summary>
internal sealed partial class SimPool
{
    /// <summary>updateinfo.ml Guidance.t in declaration order: Stdlib.compare orders a GuidanceSet so.</summary>
    private static readonly string[] s_guidanceOrder =
    [
        "RebootHost", "RestartToolstack", "EvacuateHost", "RestartDeviceModel", "RebootHostOnLivePatchFailure",
        "RebootHostOnKernelLivePatchFailure", "RebootHostOnXenLivePatchFailure", "RestartVM",
    ];

    /// <summary>repository_helpers.ml GuidanceSet.precedences: a higher guidance makes the lower ones needless.</summary>
    private static readonly (string Higher, string[] Lowers)[] s_precedences =
    [
        ("RebootHost", ["RestartToolstack", "EvacuateHost", "RestartDeviceModel"]),
        ("EvacuateHost", ["RestartDeviceModel"]),
        ("RestartVM", ["RestartDeviceModel"]),
    ];

    private static readonly JsonSerializerOptions s_canonicalJson = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    /// <summary>xcp-ng-xapi-plugins updater.py DEFAULT_REPOS that an XCP-ng host has enabled (build_repo_list).</summary>
    private const string UpdaterRepos = "xcp-ng-base,xcp-ng-updates";

    /// <summary>Db.Repository.hash: "" until pool.sync_updates (xapi/repository.ml set_available_updates_no_lock sets it).</summary>
    /// With pool.updates.syncedAtStart the repository was synced before the lab started (pool.last_update_sync in the past).
    internal string SyncedHash
    {
        get => _syncedHash ??= Scenario.Pool.Updates?.SyncedAtStart == true && !Profile.IsXcpNg ? RepositoryHash : "";
        private set => _syncedHash = value;
    }

    private string? _syncedHash;

    /// <summary>A blocking pool operation under way (xapi/xapi_pool_helpers.ml with_pool_operation): ("apply_updates", task).</summary>
    internal (string Operation, string Ref)? PoolOperation { get; private set; }

    private string? _repositoryHash;

    private IReadOnlyList<UpdateSpec> UpdateList => Scenario.Pool.Updates?.List ?? [];

    private double ApplySeconds => Scenario.Pool.Updates?.ApplySeconds ?? 90;

    /// <summary>The updateinfo checksum of the repository: the scenario's, else a SHA-256 of the canonical list.</summary>
    internal string RepositoryHash => _repositoryHash ??= Scenario.Pool.Updates?.Hash
        ?? Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(UpdateList, s_canonicalJson))));

    private JsonObject PoolCurrentOperations()
    {
        var ops = new JsonObject();
        if (HaTransition is { } ha)
        {
            ops["OpaqueRef:ha-transition"] = ha;
        }

        if (PoolOperation is { } op)
        {
            ops[op.Ref] = op.Operation;
        }

        return ops;
    }

    /// <summary>xapi_pool_helpers.ml compute_valid_operations: while apply_updates runs, every blocking pool operation
    /// (sync_updates, apply_updates, ha_enable, ha_disable, ...) gets APPLY_UPDATES_IN_PROGRESS [].</summary>
    private void RefuseDuringPoolOperation()
    {
        if (PoolOperation is { Operation: "apply_updates" })
        {
            throw new XapiError("APPLY_UPDATES_IN_PROGRESS");
        }
    }

    // ---- guidance ------------------------------------------------------------------------------

    /// <summary>What a host's pending updates ask, as xapi computes it for GET /updates and host.apply_updates.</summary>
    private sealed record HostUpdatePlan(
        IReadOnlyList<UpdateSpec> Updates,
        IReadOnlyList<string> Mandatory,
        IReadOnlyList<string> Recommended,
        IReadOnlyList<string> Full,
        IReadOnlyList<LivepatchSpec> Livepatches)
    {
        public bool UpToDate => Updates.Count == 0 && Livepatches.Count == 0;

        public IEnumerable<(string Kind, IReadOnlyList<string> Guidances)> Kinds =>
            [("mandatory", Mandatory), ("recommended", Recommended), ("full", Full)];
    }

    private static HashSet<string> Resort(IEnumerable<string> guidances)
    {
        // GuidanceSet.resort: fold over the precedences in their order.
        var set = guidances.ToHashSet(StringComparer.Ordinal);
        foreach (var (higher, lowers) in s_precedences)
        {
            if (set.Contains(higher))
            {
                set.ExceptWith(lowers);
            }
        }

        return set;
    }

    private static List<string> Ordered(IEnumerable<string> set) => set.OrderBy(g => Array.IndexOf(s_guidanceOrder, g)).ToList();

    /// <summary>
    /// repository_helpers.ml consolidate_updates_of_host / reduce_guidance: livepatches are left out when the mandatory
    /// guidance has RebootHost (can_avoid_live_patching); an update a livepatch covers gives its livepatch guidance instead
    /// of its recommended one (eval_guidance_for_one_update, append_livepatch_guidance); each kind is resorted by the
    /// precedences, then mandatory, recommended, full are cascaded (reduce_cascaded_list: a kind drops what the kinds before
    /// it hold). The lab's livepatches are those of the host's pending updates; the latest per component and base build
    /// (retrieve_livepatches_from_updateinfo) is the one applied.
    /// </summary>
    private HostUpdatePlan PlanFor(SimHost h)
    {
        var updates = UpdateList.Where(u => h.PendingUpdates.Contains(u.Id)).ToList();
        var mandatory = Resort(updates.SelectMany(u => u.Guidance.Mandatory));
        var covered = mandatory.Contains("RebootHost") ? [] : updates.Where(u => u.Livepatches.Count > 0).ToList();
        var coveredIds = covered.Select(u => u.Id).ToHashSet(StringComparer.Ordinal);
        var livepatches = covered.SelectMany(u => u.Livepatches)
            .GroupBy(lp => (lp.Component, lp.BaseBuildId))
            .Select(g => g.OrderBy(lp => lp.ToVersion, StringComparer.Ordinal).ThenBy(lp => lp.ToRelease, StringComparer.Ordinal).Last())
            .ToList();
        var recommended = Resort(updates.SelectMany(u => coveredIds.Contains(u.Id) ? u.Guidance.Livepatch : u.Guidance.Recommended)
            .Concat(covered.SelectMany(u => u.Guidance.Livepatch)));
        var full = Resort(updates.SelectMany(u => u.Guidance.Full));

        var reducedRecommended = Resort(mandatory.Concat(recommended));
        reducedRecommended.ExceptWith(mandatory);
        var before = mandatory.Concat(recommended).ToHashSet(StringComparer.Ordinal);
        var reducedFull = Resort(before.Concat(full));
        reducedFull.ExceptWith(before);
        return new HostUpdatePlan(updates, Ordered(mandatory), Ordered(reducedRecommended), Ordered(reducedFull), livepatches);
    }

    /// <summary>updateinfo.ml Guidance.to_pending_guidance; EvacuateHost has none.</summary>
    private static string? PendingGuidanceName(string guidance) => guidance switch
    {
        "RebootHost" => "reboot_host",
        "RestartToolstack" => "restart_toolstack",
        "RestartDeviceModel" => "restart_device_model",
        "RestartVM" => "restart_vm",
        "RebootHostOnLivePatchFailure" => "reboot_host_on_livepatch_failure",
        "RebootHostOnKernelLivePatchFailure" => "reboot_host_on_kernel_livepatch_failure",
        "RebootHostOnXenLivePatchFailure" => "reboot_host_on_xen_livepatch_failure",
        _ => null,
    };

    private List<string>? HostList(SimHost h, string kind) => kind switch
    {
        "mandatory" when Profile.HasPendingGuidances => h.PendingGuidances,
        "recommended" when Profile.HasGuidanceLists => h.PendingGuidancesRecommended,
        "full" when Profile.HasGuidanceLists => h.PendingGuidancesFull,
        _ => null,
    };

    private List<string>? VmList(SimVm vm, string kind) => kind switch
    {
        "mandatory" when Profile.HasPendingGuidances => vm.PendingGuidances,
        "recommended" when Profile.HasGuidanceLists => vm.PendingGuidancesRecommended,
        "full" when Profile.HasGuidanceLists => vm.PendingGuidancesFull,
        _ => null,
    };

    private static void AddOnce(List<string> list, string value)
    {
        if (!list.Contains(value))
        {
            list.Add(value);
        }
    }

    /// <summary>Removes guidances from all three of a VM's lists (xapi_vm_lifecycle.ml remove_pending_guidance).</summary>
    internal void RemoveVmGuidances(SimVm vm, params string[] guidances)
    {
        var removed = 0;
        foreach (var list in new[] { vm.PendingGuidances, vm.PendingGuidancesRecommended, vm.PendingGuidancesFull })
        {
            removed += list.RemoveAll(guidances.Contains);
        }

        if (removed > 0)
        {
            Touch("vm", vm.Ref, "mod");
        }
    }

    /// <summary>
    /// repository_helpers.ml set_pending_guidances for one kind: the host's own guidances (reboot_host,
    /// restart_toolstack) are added to the host's list; restart_device_model goes to each resident VM that has a device
    /// model now (get_ops_of_pending is_vm_applicable: Helpers.has_qemu_currently; the lab: a running HVM guest);
    /// restart_vm is not set here ("RestartVM will be set in host.apply_updates when updating the coordinator").
    /// EvacuateHost is never set (merge_with_pending_guidances).
    /// </summary>
    private void SetPendingGuidances(SimHost h, string kind, IReadOnlyList<string> coming)
    {
        foreach (var name in coming.Select(PendingGuidanceName).OfType<string>())
        {
            if (name is "reboot_host" or "restart_toolstack" && HostList(h, kind) is { } list)
            {
                AddOnce(list, name);
            }

            if (name == "restart_device_model")
            {
                foreach (var vm in Vms.Where(v => v.ResidentOn == h && !v.IsControlDomain && v.IsRunning && v.DomainType == "hvm"))
                {
                    if (VmList(vm, kind) is { } vmList)
                    {
                        AddOnce(vmList, name);
                        Touch("vm", vm.Ref, "mod");
                    }
                }
            }
        }
    }

    /// <summary>repository.ml maybe_set_restart_for_all_vms (on the coordinator only): for each kind in which some host's
    /// updates ask RestartVM, restart_vm on every VM that is not halted and not a control domain.</summary>
    private void MaybeSetRestartForAllVms(IReadOnlyList<HostUpdatePlan> plans)
    {
        foreach (var kind in new[] { "mandatory", "recommended", "full" })
        {
            if (!plans.Any(p => p.Kinds.First(k => k.Kind == kind).Guidances.Contains("RestartVM")))
            {
                continue;
            }

            foreach (var vm in Vms.Where(v => v.PowerState != "Halted" && !v.IsControlDomain))
            {
                if (VmList(vm, kind) is { } list)
                {
                    AddOnce(list, "restart_vm");
                    Touch("vm", vm.Ref, "mod");
                }
            }
        }
    }

    /// <summary>
    /// repository_helpers.ml update_livepatch_failure_guidance / merge_livepatch_failures: a component whose livepatch
    /// failed now gets reboot_host_on_{kernel,xen}_livepatch_failure in the host's recommended list; a previous failure
    /// of a component applied now goes; one not tried now stays.
    /// </summary>
    private static void UpdateLivepatchFailureGuidance(SimHost h, IReadOnlyCollection<string> applied, IReadOnlyCollection<string> failed)
    {
        static string FailureOf(string component) => component == "xen" ? "reboot_host_on_xen_livepatch_failure" : "reboot_host_on_kernel_livepatch_failure";
        foreach (var component in applied)
        {
            h.PendingGuidancesRecommended.Remove(FailureOf(component));
        }

        foreach (var component in failed)
        {
            AddOnce(h.PendingGuidancesRecommended, FailureOf(component));
        }
    }

    // ---- JSON as xapi writes it ----------------------------------------------------------------

    /// <summary>updateinfo.ml LivePatch.to_json.</summary>
    private static JsonObject LivepatchJson(LivepatchSpec lp) => new()
    {
        ["component"] = lp.Component,
        ["base_build_id"] = lp.BaseBuildId,
        ["base_version"] = lp.BaseVersion,
        ["base_release"] = lp.BaseRelease,
        ["to_version"] = lp.ToVersion,
        ["to_release"] = lp.ToRelease,
    };

    /// <summary>updateinfo.ml LivePatch.to_string: Yojson.Basic.pretty_to_string of to_json (two-space indent, one field
    /// a line, as Yojson breaks an object that does not fit in 80 columns).</summary>
    private static string LivepatchString(LivepatchSpec lp) =>
        "{\n" + string.Join(",\n", LivepatchJson(lp).Select(kv => "  " + JsonSerializer.Serialize(kv.Key) + ": " + kv.Value!.ToJsonString())) + "\n}";

    private static JsonArray Strings(IEnumerable<string> items) => new(items.Select(i => (JsonNode?)JsonValue.Create(i)).ToArray());

    /// <summary>updateinfo.ml UpdateInfo.to_json; the lab's updates have no special-info, URL, title; type "bugfix",
    /// severity "None", issued at the lab's start (Clock.Date.to_rfc3339: yyyymmddThh:mm:ssZ).</summary>
    private JsonObject UpdateInfoJson(UpdateSpec u, IReadOnlyCollection<LivepatchSpec> latest) => new()
    {
        ["id"] = u.Id,
        ["summary"] = u.Summary,
        ["description"] = u.Description,
        ["special-info"] = "",
        ["URL"] = "",
        ["type"] = "bugfix",
        ["issued"] = _origin.UtcDateTime.ToString("yyyyMMdd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
        ["severity"] = "None",
        // repository_helpers.ml prune_updateinfo_for_livepatches: only livepatches rolled up by one being applied.
        ["livepatches"] = new JsonArray(u.Livepatches.Where(lp => latest.Any(l => l.Component == lp.Component && l.BaseBuildId == lp.BaseBuildId))
            .Select(lp => (JsonNode?)LivepatchJson(lp)).ToArray()),
        ["guidance"] = new JsonObject
        {
            ["mandatory"] = Strings(u.Guidance.Mandatory),
            ["recommended"] = Strings(u.Guidance.Recommended),
            ["full"] = Strings(u.Guidance.Full),
            ["livepatch"] = Strings(u.Guidance.Livepatch),
        },
        ["title"] = "",
    };

    /// <summary>repository.ml get_pool_updates_in_json: per host HostUpdates.to_json (its guidance is reduce_guidance's
    /// three kinds), the union of their updates' UpdateInfo, and the repository hash.</summary>
    private JsonObject PoolUpdatesJson(IReadOnlyList<SimHost> hosts)
    {
        var plans = hosts.Select(h => (Host: h, Plan: PlanFor(h))).ToList();
        var latest = plans.SelectMany(p => p.Plan.Livepatches).ToList();
        var ids = plans.SelectMany(p => p.Plan.Updates.Select(u => u.Id)).Distinct().Order(StringComparer.Ordinal).ToList();
        return new JsonObject
        {
            ["hosts"] = new JsonArray(plans.Select(p => (JsonNode?)new JsonObject
            {
                ["ref"] = p.Host.Ref,
                ["guidance"] = new JsonObject
                {
                    ["mandatory"] = Strings(p.Plan.Mandatory),
                    ["recommended"] = Strings(p.Plan.Recommended),
                    ["full"] = Strings(p.Plan.Full),
                },
                // Rpm.Pkg.to_fullname: name-version-release.arch.rpm (no epoch).
                ["RPMS"] = Strings(p.Plan.Updates.SelectMany(u => u.Rpms).Distinct().Select(r => r + ".rpm")),
                ["updates"] = Strings(p.Plan.Updates.Select(u => u.Id).Order(StringComparer.Ordinal)),
                ["livepatches"] = new JsonArray(p.Plan.Livepatches.Select(lp => (JsonNode?)LivepatchJson(lp)).ToArray()),
            }).ToArray()),
            ["updates"] = new JsonArray(ids.Select(id => (JsonNode?)UpdateInfoJson(UpdateList.First(u => u.Id == id), latest)).ToArray()),
            ["hash"] = SyncedHash,
        };
    }

    /// <summary>
    /// GET /updates (xapi/xapi_pool.ml get_updates_handler under xapi/xapi_http.ml with_context): a session_id query
    /// parameter or Basic auth, else 401 (realm "Getting available updates"); host_refs "ref1;ref2" (any ref that is not
    /// a host, or an empty list: 400); no update repository (XCP-ng: NO_REPOSITORY_ENABLED) 404; nothing synced yet
    /// (the pool repository's metadata does not exist: GET_UPDATES_FAILED) or another pool operation running
    /// (OTHER_OPERATION_IN_PROGRESS from with_pool_operation get_updates) 500; else 200 application/json.
    /// </summary>
    internal (int Status, string? Body) HttpGetUpdates(string? sessionId, (string User, string Password)? basic, string? hostRefs)
    {
        lock (_gate)
        {
            Advance();
            var authenticated = sessionId is not null
                ? Sessions.ContainsKey(sessionId)
                : basic is { } b && b.User == User && b.Password == Password;
            if (!authenticated)
            {
                return (401, null);
            }

            List<SimHost> hosts = Hosts;
            if (hostRefs is not null)
            {
                var refs = hostRefs.Split(';');
                var chosen = refs.Select(r => Hosts.FirstOrDefault(h => h.Ref == r)).ToList();
                if (chosen.Any(h => h is null) || chosen.Count == 0)
                {
                    return (400, null);
                }

                hosts = chosen.OfType<SimHost>().ToList();
            }

            if (Profile.IsXcpNg || !Profile.HasApplyUpdates)
            {
                return (404, null);
            }

            if (PoolOperation is not null || SyncedHash.Length == 0)
            {
                return (500, null);
            }

            return (200, PoolUpdatesJson(hosts).ToJsonString());
        }
    }

    // ---- pool.sync_updates ---------------------------------------------------------------------

    /// <summary>
    /// pool.sync_updates(self, force, token, token_id, username, password) (idl/datamodel_pool.ml, 1.329.0; every parameter
    /// after force has a default, so 2 to 6 are taken): refused while apply_updates runs (with_pool_operation); no
    /// update repository (XCP-ng) NO_REPOSITORY_ENABLED [] (repository.ml set_available_updates_no_lock
    /// get_single_enabled_update_repository); else the repository's updateinfo checksum, which becomes the hash
    /// host.apply_updates wants, and each host's latest_synced_updates_applied is yes when nothing is pending, else no.
    /// The lab's sync takes no simulated time.
    /// </summary>
    private Task<JsonNode?> PoolSyncUpdates(string m, List<JsonNode?> a)
    {
        Arity(m, a, 2, hasDefaults: true);
        PoolArg(a, 0, m);
        _ = Bool(a, 1, m);
        RefuseDuringHaTransition();
        if (Profile.IsXcpNg)
        {
            throw new XapiError("NO_REPOSITORY_ENABLED");
        }

        NoteStateChange();
        SyncedHash = RepositoryHash;
        foreach (var h in Hosts)
        {
            h.LatestSyncedUpdatesApplied = PlanFor(h).UpToDate ? "yes" : "no";
            Touch("host", h.Ref, "mod");
        }

        Touch("pool", PoolRef, "mod");
        Audit.Event("pool.syncUpdates", new Dictionary<string, object?> { ["hash"] = SyncedHash });
        return Done(SyncedHash);
    }

    // ---- host.apply_updates --------------------------------------------------------------------

    /// <summary>
    /// host.apply_updates(self, hash) (idl/datamodel_host.ml, 1.301.0), in xapi's order (xapi/xapi_host.ml apply_updates,
    /// xapi/repository.ml apply_updates and apply_updates'): another apply_updates in the pool APPLY_UPDATES_IN_PROGRESS [];
    /// HA on HA_IS_ENABLED []; from 24.10.0 the host is disabled first (a refusal below leaves it disabled); a busy host
    /// OTHER_OPERATION_IN_PROGRESS; from 24.10.0 pending mandatory guidance HOST_PENDING_MANDATORY_GUIDANCE_NOT_EMPTY [host];
    /// no update repository (XCP-ng) NO_REPOSITORY_ENABLED []; a hash that is "" or not the synced one (Db.Repository.hash
    /// is "" until pool.sync_updates) UPDATEINFO_HASH_MISMATCH []; nothing pending: [] at once, no guidance; from 24.10.0
    /// RebootHost or EvacuateHost in the mandatory guidance with a non-control-domain VM resident
    /// HOST_EVACUATION_IS_REQUIRED [host] (repository_helpers.ml assert_host_evacuation_if_required). Then the install
    /// takes pool.updates.applySeconds (host and pool current_operations apply_updates), sets the reduced guidances but
    /// EvacuateHost, applies the livepatches, and answers [[APPLY_LIVEPATCH_FAILED; livepatch]] per failed one.
    /// </summary>
    private Task<JsonNode?> HostApplyUpdates(string m, List<JsonNode?> a, SimTask? task)
    {
        Arity(m, a, 2);
        var h = HostArg(a, 0, m);
        var hash = Str(a, 1, m);
        RefuseDuringHaTransition();
        if (HaEnabled)
        {
            throw new XapiError("HA_IS_ENABLED");
        }

        NoteStateChange();
        if (Profile.GuidanceKeepsHostDisabled && h.Enabled)
        {
            h.Enabled = false;
            Touch("host", h.Ref, "mod");
            Audit.Event("host.disable", new Dictionary<string, object?> { ["host"] = h.Name, ["by"] = "host.apply_updates" });
        }

        if (h.Power != HostPower.Up || h.CurrentOperations.Count > 0)
        {
            throw new XapiError("OTHER_OPERATION_IN_PROGRESS", "host", h.Ref);
        }

        if (Profile.GuidanceKeepsHostDisabled && h.PendingGuidances.Count > 0)
        {
            throw new XapiError("HOST_PENDING_MANDATORY_GUIDANCE_NOT_EMPTY", h.Ref);
        }

        if (Profile.IsXcpNg)
        {
            throw new XapiError("NO_REPOSITORY_ENABLED");
        }

        if (hash.Length == 0 || hash != SyncedHash)
        {
            throw new XapiError("UPDATEINFO_HASH_MISMATCH");
        }

        // repository.ml apply_updates: on the coordinator, every host's updates as they are before this apply.
        var plansOfHosts = h == Master && Profile.SetsRestartVmForAllVms ? Hosts.Select(PlanFor).ToList() : [];
        var plan = PlanFor(h);
        if (plan.UpToDate)
        {
            MaybeSetRestartForAllVms(plansOfHosts);
            RecordApplied(h, hash);
            Audit.Event("host.applyUpdates", AppliedEvent(h, [], [], []));
            return Done(new JsonArray());
        }

        if (Profile.GuidanceKeepsHostDisabled && plan.Mandatory.Any(g => g is "RebootHost" or "EvacuateHost")
            && Vms.Any(v => v.ResidentOn == h && !v.IsControlDomain))
        {
            throw new XapiError("HOST_EVACUATION_IS_REQUIRED", h.Ref);
        }

        var op = task?.Ref ?? NewRef();
        h.CurrentOperations[op] = "apply_updates";
        PoolOperation = ("apply_updates", op);
        Touch("host", h.Ref, "mod");
        Touch("pool", PoolRef, "mod");
        var ids = plan.Updates.Select(u => u.Id).ToList();
        Audit.Event("host.applyUpdates.start", new Dictionary<string, object?> { ["host"] = h.Name, ["updates"] = ids });
        var done = new TaskCompletionSource<JsonNode?>(TaskCreationOptions.RunContinuationsAsynchronously);
        Schedule(Now + ApplySeconds, () =>
        {
            h.CurrentOperations.Remove(op);
            PoolOperation = null;
            Touch("host", h.Ref, "mod");
            Touch("pool", PoolRef, "mod");
            if (h.Power != HostPower.Up || TakeFault("updateFails", h))
            {
                // repository.ml apply: a failed yum upgrade is APPLY_UPDATES_FAILED [host]; nothing changed on the host.
                Audit.Event("host.applyUpdates.failed", new Dictionary<string, object?> { ["host"] = h.Name, ["error"] = "APPLY_UPDATES_FAILED" });
                done.TrySetException(new XapiError("APPLY_UPDATES_FAILED", h.Ref));
                return;
            }

            var failing = Scenario.Faults.Any(f => f.Type == "livepatchFails" && f.Host == h.Name);
            var applied = failing ? [] : plan.Livepatches;
            var failed = failing ? plan.Livepatches : [];
            foreach (var lp in applied)
            {
                h.LiveVersions[lp.Component] = lp.ToVersion + "-" + lp.ToRelease;
            }

            h.PendingUpdates.RemoveAll(ids.Contains);
            h.InstalledUpdates.AddRange(ids);
            foreach (var (kind, guidances) in plan.Kinds)
            {
                SetPendingGuidances(h, kind, guidances.Where(g => g != "EvacuateHost").ToList());
            }

            if (Profile.HasGuidanceLists)
            {
                UpdateLivepatchFailureGuidance(h, applied.Select(lp => lp.Component).ToList(), failed.Select(lp => lp.Component).ToList());
            }

            MaybeSetRestartForAllVms(plansOfHosts);
            RecordApplied(h, hash);
            Audit.Event("host.applyUpdates", AppliedEvent(h, ids, applied, failed));
            done.TrySetResult(new JsonArray(failed.Select(lp => (JsonNode?)new JsonArray("APPLY_LIVEPATCH_FAILED", LivepatchString(lp))).ToArray()));
        });
        return done.Task;
    }

    /// <summary>xapi_host.ml apply_updates, after a success: last_software_update, latest_synced_updates_applied yes,
    /// last_update_hash.</summary>
    private void RecordApplied(SimHost h, string hash)
    {
        h.LastSoftwareUpdate = NowTime;
        h.LatestSyncedUpdatesApplied = "yes";
        h.LastUpdateHash = hash;
        Touch("host", h.Ref, "mod");
    }

    private Dictionary<string, object?> AppliedEvent(SimHost h, List<string> ids, IReadOnlyList<LivepatchSpec> applied, IReadOnlyList<LivepatchSpec> failed) => new()
    {
        ["host"] = h.Name,
        ["updates"] = ids,
        ["pendingGuidances"] = h.PendingGuidances.ToList(),
        ["recommended"] = h.PendingGuidancesRecommended.ToList(),
        ["full"] = h.PendingGuidancesFull.ToList(),
        ["livepatches"] = applied.Select(lp => lp.Component + " " + lp.ToVersion + "-" + lp.ToRelease).ToList(),
        ["livepatchesFailed"] = failed.Select(lp => lp.Component).ToList(),
        ["enabled"] = h.Enabled,
    };

    /// <summary>Consumes one strike of a counted fault (updateFails, updaterBusy) aimed at the host.</summary>
    private bool TakeFault(string type, SimHost h)
    {
        foreach (var f in Scenario.Faults.Where(f => f.Type == type && f.Host == h.Name && f.Times > 0))
        {
            f.Times--;
            return true;
        }

        return false;
    }

    // ---- XCP-ng: host.call_plugin updater.py ---------------------------------------------------

    /// <summary>
    /// host.call_plugin(host, plugin, fn, args) (xapi/xapi_plugins.ml): a plugin that is not installed is
    /// XENAPI_MISSING_PLUGIN [name] (the lab installs updater.py on XCP-ng only); a function the plugin's dispatch table
    /// does not have is UNKNOWN_XENAPI_PLUGIN_FUNCTION [fn] (XenAPIPlugin.py dispatch); a XenAPIPlugin.Failure(code,
    /// params) comes back as the error code with its params.
    /// </summary>
    private Task<JsonNode?> HostCallPlugin(string m, List<JsonNode?> a)
    {
        Arity(m, a, 4);
        var h = HostArg(a, 0, m);
        var plugin = Str(a, 1, m);
        var fn = Str(a, 2, m);
        if (a[3] is not JsonObject)
        {
            throw new XapiError("FIELD_TYPE_ERROR", "args");
        }

        if (h.Power != HostPower.Up || !h.Live)
        {
            throw new XapiError("HOST_OFFLINE", h.Ref);
        }

        if (!Profile.IsXcpNg || plugin != "updater.py")
        {
            throw new XapiError("XENAPI_MISSING_PLUGIN", plugin);
        }

        return fn switch
        {
            "check_update" => UpdaterCheckUpdate(h),
            "update" => UpdaterUpdate(h),
            "install" or "query_installed" or "get_proxies" or "set_proxies" =>
                throw new XapiError("OPERATION_NOT_ALLOWED", "updater.py " + fn + " is not simulated by the lab"),
            _ => throw new XapiError("UNKNOWN_XENAPI_PLUGIN_FUNCTION", fn),
        };
    }

    /// <summary>xcpngutils error_wrapped: any other exception becomes raise_plugin_error('-1', str(e), backtrace=...),
    /// i.e. code "-1" with [message; ""; traceback].</summary>
    private static XapiError PluginError(string code, string message, string details, string exception) =>
        new(code, message, details,
            "Traceback (most recent call last):\n  File \"/etc/xapi.d/plugins/xcpngutils/__init__.py\", in wrapper\n" + exception + ": " + message + "\n");

    /// <summary>
    /// updater.py check_update (operationlock with timeout 0): the lock held by an update running on the host, or the
    /// updaterBusy fault (an update started out of band), is OperationLocker._raise_busy's "The updater plugin is busy
    /// (current operation: update)", code "-1". Else the JSON list display_package makes of each pending package; the
    /// lab has no changelog (null), url, size or license for them.
    /// </summary>
    private Task<JsonNode?> UpdaterCheckUpdate(SimHost h)
    {
        // The fault is an update someone started out of band: the lock's file names "update".
        var current = h.UpdaterOperation ?? (TakeFault("updaterBusy", h) ? "update" : null);
        if (current is not null)
        {
            throw PluginError("-1", "The updater plugin is busy (current operation: " + current + ")", "", "OperationException");
        }

        var packages = new Dictionary<string, JsonObject>(StringComparer.Ordinal);
        foreach (var u in UpdateList.Where(u => h.PendingUpdates.Contains(u.Id)))
        {
            foreach (var rpm in u.Rpms)
            {
                var (name, version, release) = ParseRpm(rpm);
                packages[name] = new JsonObject
                {
                    ["name"] = name,
                    ["version"] = version,
                    ["release"] = release,
                    ["description"] = u.Summary,
                    ["changelog"] = null,
                    ["url"] = "",
                    ["size"] = 0,
                    ["license"] = "",
                };
            }
        }

        return Done(new JsonArray(packages.Values.Select(p => (JsonNode?)p).ToArray()).ToJsonString());
    }

    /// <summary>"name-version-release.arch": the arch after the last dot, release and version before the last two dashes.</summary>
    private static (string Name, string Version, string Release) ParseRpm(string rpm)
    {
        var noArch = rpm[..rpm.LastIndexOf('.')];
        var releaseAt = noArch.LastIndexOf('-');
        var versionAt = noArch.LastIndexOf('-', releaseAt - 1);
        return (noArch[..versionAt], noArch[(versionAt + 1)..releaseAt], noArch[(releaseAt + 1)..]);
    }

    private static readonly string[] s_yumUpdate = ["yum", "update", "--disablerepo=*", "--enablerepo=" + UpdaterRepos, "-y"];

    /// <summary>
    /// updater.py update (operationlock timeout 10; install_helper runs yum update through xcpngutils run_command): with an
    /// update already holding the lock (one running here, or the updaterBusy fault) OperationLocker raises "Update already
    /// in progress" at once, code "-1" (error_wrapped). Else it takes pool.updates.applySeconds and installs every pending
    /// package; the answer is json.dumps of run_command's {stdout, stderr, command, returncode}. The updateFails fault is
    /// yum failing: ProcessException, code "1", ["Command '[...]' failed with code: 1"; "stdout: '...', stderr: '...'";
    /// traceback]; nothing installed. The plugin writes nothing in other_config (Xen Orchestra writes
    /// rpm_patch_installation_time itself: xo-server src/xapi/mixins/patching.mjs _xcpUpdate).
    /// </summary>
    private Task<JsonNode?> UpdaterUpdate(SimHost h)
    {
        if (h.UpdaterOperation == "update" || TakeFault("updaterBusy", h))
        {
            throw PluginError("-1", "Update already in progress", "", "OperationException");
        }

        NoteStateChange();
        var ids = h.PendingUpdates.ToList();
        h.UpdaterOperation = "update";
        Audit.Event("host.plugin.update.start", new Dictionary<string, object?> { ["host"] = h.Name, ["updates"] = ids });
        var done = new TaskCompletionSource<JsonNode?>(TaskCreationOptions.RunContinuationsAsynchronously);
        Schedule(Now + ApplySeconds, () =>
        {
            h.UpdaterOperation = null;
            var command = "[" + string.Join(", ", s_yumUpdate.Select(x => "'" + x + "'")) + "]";
            if (h.Power != HostPower.Up || TakeFault("updateFails", h))
            {
                Audit.Event("host.plugin.update.failed", new Dictionary<string, object?> { ["host"] = h.Name });
                done.TrySetException(PluginError("1", "Command '" + command + "' failed with code: 1",
                    "stdout: 'Loaded plugins: fastestmirror\n', stderr: 'Error: transaction check failed\n'", "ProcessException"));
                return;
            }

            var rpms = UpdateList.Where(u => ids.Contains(u.Id)).SelectMany(u => u.Rpms).ToList();
            h.PendingUpdates.RemoveAll(ids.Contains);
            h.InstalledUpdates.AddRange(ids);
            Touch("host", h.Ref, "mod");
            Audit.Event("host.plugin.update", new Dictionary<string, object?> { ["host"] = h.Name, ["updates"] = ids });
            var stdout = rpms.Count == 0
                ? "Loaded plugins: fastestmirror\nNo packages marked for update\n"
                : "Loaded plugins: fastestmirror\n\nUpdated:\n" + string.Concat(rpms.Select(r => "  " + r + "\n")) + "\nComplete!\n";
            var result = new JsonObject
            {
                ["stdout"] = stdout,
                ["stderr"] = "",
                ["command"] = Strings(s_yumUpdate),
                ["returncode"] = 0,
            };
            done.TrySetResult(JsonValue.Create(result.ToJsonString()));
        });
        return done.Task;
    }

    // ---- host other_config (what Xen Orchestra writes after an XCP-ng update) ------------------

    private static readonly string[] s_computedHostKeys = ["boot_time", "agent_start_time", "iscsi_iqn"];

    /// <summary>host.add_to_other_config (a generated map modifier): a key already there is MAP_DUPLICATE_KEY
    /// [class; field; ref; key] (db_cache_impl.ml add_to_map). rpm_patch_installation_time replaces the one the lab made.</summary>
    private Task<JsonNode?> HostAddOtherConfig(string m, List<JsonNode?> a)
    {
        Arity(m, a, 3);
        var h = HostArg(a, 0, m);
        var key = Str(a, 1, m);
        if (HostOtherConfig(h).ContainsKey(key))
        {
            throw new XapiError("MAP_DUPLICATE_KEY", "host", "other_config", h.Ref, key);
        }

        NoteStateChange();
        h.OtherConfig[key] = Str(a, 2, m);
        Touch("host", h.Ref, "mod");
        Audit.Event("host.otherConfig.add", new Dictionary<string, object?> { ["host"] = h.Name, ["key"] = key });
        return Done("");
    }

    /// <summary>host.remove_from_other_config: a key that is not there is no error.</summary>
    private Task<JsonNode?> HostRemoveOtherConfig(string m, List<JsonNode?> a)
    {
        Arity(m, a, 2);
        var h = HostArg(a, 0, m);
        var key = Str(a, 1, m);
        var removed = h.OtherConfig.Remove(key);
        if (key == "rpm_patch_installation_time" && h.RpmPatchInstallationTime is not null)
        {
            h.RpmPatchInstallationTime = null;
            removed = true;
        }

        if (removed)
        {
            NoteStateChange();
            Touch("host", h.Ref, "mod");
            Audit.Event("host.otherConfig.remove", new Dictionary<string, object?> { ["host"] = h.Name, ["key"] = key });
        }

        return Done("");
    }

    /// <summary>host.set_other_config: the whole map (the keys the lab derives from the boot stay the lab's).</summary>
    private Task<JsonNode?> HostSetOtherConfig(string m, List<JsonNode?> a)
    {
        Arity(m, a, 2);
        var h = HostArg(a, 0, m);
        var map = a[1] is JsonObject o ? o.ToDictionary(kv => kv.Key, kv => kv.Value?.ToString() ?? "") : throw new XapiError("FIELD_TYPE_ERROR", "value");
        NoteStateChange();
        h.OtherConfig.Clear();
        h.RpmPatchInstallationTime = null;
        foreach (var (key, value) in map.Where(kv => !s_computedHostKeys.Contains(kv.Key)))
        {
            h.OtherConfig[key] = value;
        }

        Touch("host", h.Ref, "mod");
        Audit.Event("host.otherConfig.set", new Dictionary<string, object?> { ["host"] = h.Name, ["keys"] = map.Keys.Order(StringComparer.Ordinal).ToList() });
        return Done("");
    }

    // ---- VM guidances --------------------------------------------------------------------------

    /// <summary>
    /// VM.restart_device_models(self) (idl/datamodel_vm.ml, 23.30.0; xapi/xapi_vm.ml restart_device_models): a VM that
    /// is not running VM_BAD_POWER_STATE [vm; running; state]; then a localhost VM.pool_migrate (live=true), so the
    /// control domain, a busy VM and migration blockers are refused as pool_migrate refuses them. The lab's localhost
    /// migration takes migration.setupSeconds; at its end restart_device_model goes (xapi_vm_migrate.ml
    /// pool_migrate_complete).
    /// </summary>
    private Task<JsonNode?> VmRestartDeviceModels(string m, List<JsonNode?> a, SimTask? task)
    {
        Arity(m, a, 1);
        var vm = VmArg(a, 0, m);
        if (vm.PowerState != "Running")
        {
            throw BadPowerState(vm, "running");
        }

        RefuseControlDomain(vm);
        if (BusyError(vm) is { } busy)
        {
            throw new XapiError(busy[0], busy[1..]);
        }

        if (SimMigrationRules.Refusal(vm) is { } refusal)
        {
            throw new XapiError(refusal[0], refusal[1..]);
        }

        var op = task?.Ref ?? NewRef();
        vm.CurrentOperations[op] = "pool_migrate";
        Touch("vm", vm.Ref, "mod");
        NoteStateChange();
        var done = new TaskCompletionSource<JsonNode?>(TaskCreationOptions.RunContinuationsAsynchronously);
        Schedule(Now + Scenario.Migration.SetupSeconds, () =>
        {
            vm.CurrentOperations.Remove(op);
            Touch("vm", vm.Ref, "mod");
            RemoveVmGuidances(vm, "restart_device_model");
            Audit.Event("vm.restartDeviceModels", new Dictionary<string, object?> { ["vm"] = vm.Name, ["host"] = vm.ResidentOn?.Name });
            done.TrySetResult(JsonValue.Create(""));
        });
        return done.Task;
    }

    /// <summary>
    /// VM.clean_reboot(vm): Running only (xapi_vm_lifecycle.ml allowed_power_states), not beside another operation but a
    /// migrate_send, and the guest must be able to be asked (check_op_for_feature: VM_LACKS_FEATURE [vm]); the guest takes
    /// its shutdownSeconds and the domain StartSeconds, staying resident. Its new start_time removes restart_device_model
    /// and restart_vm (xapi_xenops.ml, "VM start and VM reboot"). A guest that ignores shutdown requests fails with
    /// VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT [vm] after 60 s.
    /// </summary>
    private Task<JsonNode?> VmCleanReboot(string m, List<JsonNode?> a, SimTask? task)
    {
        Arity(m, a, 1);
        var vm = VmArg(a, 0, m);
        AssertCanBeAskedToShutDown(vm);

        var op = task?.Ref ?? NewRef();
        vm.CurrentOperations[op] = "clean_reboot";
        Touch("vm", vm.Ref, "mod");
        NoteStateChange();
        var done = new TaskCompletionSource<JsonNode?>(TaskCreationOptions.RunContinuationsAsynchronously);
        Schedule(Now + (vm.IgnoresShutdown ? ShutdownAckSeconds : vm.ShutdownSeconds + StartSeconds), () =>
        {
            vm.CurrentOperations.Remove(op);
            Touch("vm", vm.Ref, "mod");
            if (vm.IgnoresShutdown)
            {
                done.TrySetException(new XapiError("VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT", vm.Ref));
                return;
            }

            if (vm.PowerState != "Running")
            {
                done.TrySetException(BadPowerState(vm, "running"));
                return;
            }

            RemoveVmGuidances(vm, "restart_device_model", "restart_vm");
            Audit.Event("vm.reboot", new Dictionary<string, object?> { ["vm"] = vm.Name, ["host"] = vm.ResidentOn?.Name, ["how"] = "clean" });
            done.TrySetResult(JsonValue.Create(""));
        });
        return done.Task;
    }
}
