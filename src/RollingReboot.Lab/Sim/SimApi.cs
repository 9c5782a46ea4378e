using System.Globalization;
using System.Text.Json.Nodes;

namespace RollingReboot.Lab.Sim;

/// <summary>An error raised before dispatch (emergency mode): JSON-RPC sends it as a bare array with id 0.</summary>
public sealed class PreDispatchError(string code, params string[] parameters) : Exception(code)
{
    public PreDispatchError() : this("INTERNAL_ERROR") { }

    public PreDispatchError(string code, Exception inner) : this(code, inner.Message) { }

    public string Code { get; } = code;

    public IReadOnlyList<string> Parameters { get; } = parameters;
}

/// <summary>The XenAPI surface of the simulated pool: preconditions and error codes as XAPI has them.</summary>
internal sealed partial class SimPool
{
    private static readonly HashSet<string> s_noSession = ["session.login_with_password", "session.slave_local_login_with_password", "system.listMethods", "system.methodSignature"];
    private static readonly string[] s_nameLabelClasses = ["host", "VM", "SR", "network", "pool", "VDI", "task"];

    // The lab's calls of ocaml/idl/datamodel.ml emergency_calls: answered even in emergency mode.
    private static readonly HashSet<string> s_emergencyCalls = ["session.slave_local_login_with_password"];

    // The messages the lab implements beyond the generated getters: each has an Async form except task.*.
    private static readonly string[] s_actions =
    [
        "pool.disable_ha", "pool.enable_ha", "pool.set_ha_host_failures_to_tolerate", "pool.set_ha_allow_overcommit", "pool.add_to_other_config",
        "pool.remove_from_other_config", "host.disable", "host.enable", "host.reboot", "host.shutdown", "host.power_on", "host.evacuate",
        "host.get_vms_which_prevent_evacuation", "host.assert_can_evacuate", "host.compute_free_memory", "host.get_servertime", "host.get_server_localtime",
        "host.restart_agent", "host.apply_updates", "pool.sync_updates", "host.call_plugin", "host.add_to_other_config",
        "host.remove_from_other_config", "host.set_other_config", "VM.restart_device_models", "VM.clean_reboot", "VM.pool_migrate", "VM.assert_can_boot_here", "VM.clean_shutdown", "VM.hard_shutdown", "VM.start_on", "PBD.plug", "task.cancel", "task.destroy",
    ];

    /// <summary>Runs one call received by <paramref name="receiver"/>. Long operations complete outside the lock.</summary>
    public async Task<JsonNode?> CallAsync(string receiverAddress, string method, List<JsonNode?> args, CancellationToken cancellationToken)
    {
        Task<JsonNode?>? pending;
        lock (_gate)
        {
            Advance();
            // A call is handled at one simulated instant: what it starts and records carries the moment it arrived.
            using var instant = AtInstant(Now);
            var receiver = Hosts.First(h => h.Address == receiverAddress);
            if (receiver.Power == HostPower.Down)
            {
                throw new PreDispatchError("HOST_OFFLINE", receiver.Ref);
            }

            // api_server.ml callback1: while xapi is in emergency mode (starting, or a member that cannot reach its
            // master), every call outside the emergency list gets Xapi_globs.emergency_mode_error before dispatch.
            if (EmergencyErrorOf(receiver) is { } emergency && !s_emergencyCalls.Contains(method))
            {
                throw new PreDispatchError(emergency[0], emergency[1..]);
            }

            if (receiver != Master && method is not ("system.listMethods" or "system.methodSignature"))
            {
                throw new XapiError("HOST_IS_SLAVE", Master.Address);
            }

            if (Master.Power == HostPower.Down)
            {
                throw new PreDispatchError("HOST_OFFLINE", Master.Ref);
            }

            // gen_server.ml dispatch_call: "Async." is stripped first; the name the errors echo is the stripped one.
            var isAsync = method.StartsWith("Async.", StringComparison.Ordinal);
            var call = isAsync ? method[6..] : method;
            SimSession? session = null;
            if (!s_noSession.Contains(call))
            {
                if (args.Count == 0 && !IsKnownMethod(call))
                {
                    // An unknown name without a session to check: server_helpers.ml unknown_rpc_failure.
                    throw new XapiError("MESSAGE_METHOD_UNKNOWN", call);
                }

                var sref = Str(args, 0, method);
                if (!Sessions.TryGetValue(sref, out session))
                {
                    throw new XapiError("SESSION_INVALID", sref);
                }

                if (RandomFault("sessionInvalid"))
                {
                    Sessions.Remove(sref);
                    throw new XapiError("SESSION_INVALID", sref);
                }

                args = args.Skip(1).ToList();
            }

            if (isAsync)
            {
                if (!s_actions.Contains(call) || call.StartsWith("task.", StringComparison.Ordinal))
                {
                    // server_helpers.ml do_dispatch: a known message without an async form (datamodel.ml
                    // no_async_messages_for: session, event, task; and every generated getter) is a "Fault".
                    throw IsKnownMethod(call)
                        ? new XapiError("Fault", "No async mode for this operation (rpc: " + call + ")")
                        : new XapiError("MESSAGE_METHOD_UNKNOWN", call);
                }

                var task = NewTask(call, session);
                Task<JsonNode?>? started;
                try
                {
                    started = Dispatch(call, args, session, task);
                }
                catch (XapiError)
                {
                    // Refused before it started: the caller gets the error and never the task, so none may linger.
                    Tasks.Remove(task.Ref);
                    Touch("task", task.Ref, "del");
                    throw;
                }

                if (started is not null)
                {
                    _ = CompleteWhenDoneAsync(task, started);
                }

                return task.Ref;
            }

            pending = Dispatch(method, args, session, null);
            if (pending is null)
            {
                throw new InvalidOperationException("dispatch returned nothing");
            }

            if (pending.IsCompleted)
            {
                return pending.Result;
            }
        }

        if (method == "event.from")
        {
            return await pending.WaitAsync(cancellationToken);
        }

        return await pending.WaitAsync(cancellationToken);
    }

    private SimTask NewTask(string name, SimSession? session)
    {
        var task = new SimTask { Ref = NewRef(), Uuid = Guid.NewGuid().ToString(), NameLabel = "Async." + name, Created = NowTime, SessionRef = session?.Ref };
        Tasks[task.Ref] = task;
        Touch("task", task.Ref, "add");
        return task;
    }

    private async Task CompleteWhenDoneAsync(SimTask task, Task<JsonNode?> work)
    {
        try
        {
            var result = await work;
            lock (_gate)
            {
                // task.result is the XML-RPC encoding of the result (a set of sets for host.apply_updates).
                var value = result is JsonArray ? "" : result?.ToString() ?? "";
                var text = result is JsonArray array ? Xapi.XmlRpcServer.ValueXml(array)
                    : value.Length == 0 ? "" : "<value>" + System.Net.WebUtility.HtmlEncode(value) + "</value>";
                CompleteTask(task, "success", text, []);
            }
        }
        catch (XapiError e)
        {
            lock (_gate)
            {
                CompleteTask(task, e.Code == "TASK_CANCELLED" ? "cancelled" : "failure", "", [e.Code, .. e.Parameters]);
            }
        }
    }

    /// <summary>Runs a method under the gate; returns a completed task, or one that completes later.</summary>
    private Task<JsonNode?> Dispatch(string method, List<JsonNode?> a, SimSession? session, SimTask? asyncTask)
    {
        var dot = method.IndexOf('.', StringComparison.Ordinal);
        if (dot <= 0)
        {
            throw new XapiError("MESSAGE_METHOD_UNKNOWN", method);
        }

        var cls = ApiClass(method[..dot]) ?? (method[..dot] == "event" || method[..dot] == "system" ? method[..dot] : null);
        var name = method[(dot + 1)..];
        if (cls is null)
        {
            throw new XapiError("MESSAGE_METHOD_UNKNOWN", method);
        }

        var m = cls + "." + name;
        switch (m)
        {
            case "session.login_with_password":
            case "session.slave_local_login_with_password":
                Arity(m, a, 2, hasDefaults: true);
                return Done(Login(Str(a, 0, m), Str(a, 1, m), a.Count > 3 ? Str(a, 3, m) : ""));
            case "session.logout":
                Arity(m, a, 0);
                Sessions.Remove(session!.Ref);
                return Done("");
            case "system.listMethods":
                return Done(new JsonArray(ListMethods().Select(x => (JsonNode?)x).ToArray()));
            case "event.from":
                Arity(m, a, 3);
                return EventFrom(a[0], Str(a, 1, m), Num(a, 2, m));
            case "event.inject":
                Arity(m, a, 2);
                // xapi_event.ml inject: a ref that is not in the table named raises HANDLE_INVALID [class; ref].
                if (ApiClass(Str(a, 0, m)) is not { } injected || Record(injected, Str(a, 1, m)) is null)
                {
                    throw new XapiError("HANDLE_INVALID", Str(a, 0, m), Str(a, 1, m));
                }

                Touch(EventClass(Str(a, 0, m)), Str(a, 1, m), "mod");
                // The token just before the touch, so that event.from from it sees the injected object.
                return Done(EventToken(EventId - 1));
        }

        if (cls is "event" or "system")
        {
            throw new XapiError("MESSAGE_METHOD_UNKNOWN", method);
        }

        // Generic getters every class has.
        if (name == "get_all")
        {
            Arity(m, a, 0);
            return Done(new JsonArray(RefsOf(cls).Select(r => (JsonNode?)r).ToArray()));
        }

        if (name == "get_all_records")
        {
            Arity(m, a, 0);
            var all = new JsonObject();
            foreach (var r in RefsOf(cls).ToList())
            {
                all[r] = Record(cls, r);
            }

            return Done(all);
        }

        if (name == "get_record")
        {
            Arity(m, a, 1);
            return Done(Resolve(cls, Str(a, 0, m)));
        }

        if (name == "get_by_uuid")
        {
            Arity(m, a, 1);
            var uuid = Str(a, 0, m);
            var r = RefsOf(cls).FirstOrDefault(r => UuidOf(cls, r) == uuid) ?? throw new XapiError("UUID_INVALID", cls, uuid);
            return Done(r);
        }

        if (name == "get_by_name_label" && s_nameLabelClasses.Contains(cls))
        {
            Arity(m, a, 1);
            var label = Str(a, 0, m);
            return Done(new JsonArray(RefsOf(cls).Where(r => Record(cls, r)?["name_label"]?.ToString() == label).Select(r => (JsonNode?)r).ToArray()));
        }

        if (name.StartsWith("get_", StringComparison.Ordinal) && !IsSpecialGetter(m))
        {
            Arity(m, a, 1);
            var record = Resolve(cls, Str(a, 0, m));
            var field = name[4..];
            return record.TryGetPropertyValue(field, out var value)
                ? Done(value?.DeepClone())
                : throw new XapiError("MESSAGE_METHOD_UNKNOWN", method);
        }

        return m switch
        {
            "pool.disable_ha" => PoolDisableHa(m, a),
            "pool.enable_ha" => PoolEnableHa(m, a),
            "pool.set_ha_host_failures_to_tolerate" => PoolSetNtol(m, a),
            "pool.set_ha_allow_overcommit" => PoolSetOvercommit(m, a),
            "pool.add_to_other_config" => PoolAddOtherConfig(m, a),
            "pool.remove_from_other_config" => PoolRemoveOtherConfig(m, a),
            "pool.designate_new_master" => throw new XapiError(HaEnabled ? "HA_IS_ENABLED" : "OPERATION_NOT_ALLOWED", "not simulated by the lab"),
            "host.disable" => HostDisable(m, a),
            "host.enable" => HostEnable(m, a),
            "host.reboot" => HostReboot(m, a, powerOff: false),
            "host.shutdown" => HostReboot(m, a, powerOff: true),
            "host.power_on" => HostPowerOn(m, a),
            "host.evacuate" => HostEvacuate(m, a, asyncTask),
            "host.get_vms_which_prevent_evacuation" => HostPreventing(m, a),
            "host.assert_can_evacuate" => HostAssertCanEvacuate(m, a),
            "host.compute_free_memory" => HostFreeMemory(m, a),
            "host.get_servertime" or "host.get_server_localtime" => HostServerTime(m, a),
            "host.apply_updates" when Profile.HasApplyUpdates => HostApplyUpdates(m, a, asyncTask),
            "pool.sync_updates" when Profile.HasSyncUpdates => PoolSyncUpdates(m, a),
            "host.call_plugin" => HostCallPlugin(m, a),
            "host.add_to_other_config" => HostAddOtherConfig(m, a),
            "host.remove_from_other_config" => HostRemoveOtherConfig(m, a),
            "host.set_other_config" => HostSetOtherConfig(m, a),
            "VM.restart_device_models" when Profile.HasRestartDeviceModels => VmRestartDeviceModels(m, a, asyncTask),
            "VM.clean_reboot" => VmCleanReboot(m, a, asyncTask),
            "host.restart_agent" => HostRestartAgent(m, a),
            "VM.pool_migrate" => VmPoolMigrate(m, a, asyncTask),
            "VM.assert_can_boot_here" => VmAssertCanBootHere(m, a),
            "VM.clean_shutdown" => VmCleanShutdown(m, a, asyncTask),
            "VM.hard_shutdown" => VmHardShutdown(m, a, asyncTask),
            "VM.start_on" => VmStartOn(m, a, asyncTask),
            "PBD.plug" => PbdPlug(m, a),
            "task.cancel" => TaskCancel(m, a),
            "task.destroy" => TaskDestroy(m, a),
            _ => throw new XapiError("MESSAGE_METHOD_UNKNOWN", method),
        };
    }

    private static bool IsSpecialGetter(string m) => m is "host.get_vms_which_prevent_evacuation" or "host.get_servertime" or "host.get_server_localtime";

    internal IEnumerable<string> ListMethods()
    {
        var methods = new List<string> { "session.login_with_password", "session.logout", "system.listMethods", "event.from", "event.inject" };
        foreach (var c in ApiClasses.Where(c => c != "session"))
        {
            methods.AddRange(new[] { "get_all", "get_all_records", "get_record", "get_by_uuid" }.Select(x => c + "." + x));
            if (RefsOf(c).FirstOrDefault() is { } r && Record(c, r) is { } rec)
            {
                methods.AddRange(rec.Select(kv => c + ".get_" + kv.Key));
            }
        }

        // host.apply_updates exists from 1.301.0, pool.sync_updates from 1.329.0, VM.restart_device_models from 23.30.0
        // (idl/datamodel_host.ml, datamodel_pool.ml, datamodel_vm.ml).
        var actions = s_actions.Where(x => x switch
        {
            "host.apply_updates" => Profile.HasApplyUpdates,
            "pool.sync_updates" => Profile.HasSyncUpdates,
            "VM.restart_device_models" => Profile.HasRestartDeviceModels,
            _ => true,
        }).ToList();
        methods.AddRange(actions);
        methods.AddRange(actions.Where(x => !x.StartsWith("task.", StringComparison.Ordinal)).Select(x => "Async." + x));
        return methods.Distinct();
    }

    private bool IsKnownMethod(string call) =>
        call is "session.slave_local_login_with_password" or "system.methodSignature" ||
        (call.Split('.') is [var cls, "get_by_name_label"] && s_nameLabelClasses.Contains(ApiClass(cls))) ||
        ListMethods().Contains(call);

    // ---- helpers -------------------------------------------------------------------------------

    private static Task<JsonNode?> Done(JsonNode? value) => Task.FromResult(value);

    private static Task<JsonNode?> Done(string value) => Task.FromResult<JsonNode?>(JsonValue.Create(value));

    /// <summary>
    /// The parameter count check of ocaml/idl/ocaml_backend/gen_server.ml: a message without defaults matches only its exact
    /// list, one with defaults (<paramref name="hasDefaults"/>) any list of at least its mandatory parameters, the rest
    /// read as defaults and extras ignored. The error is <c>[method; mandatory count; received count]</c>, both
    /// without the session (<c>count_mandatory_message_parameters</c>, <c>List.length __params - 1</c>).
    /// <paramref name="a"/> is the list without the session.
    /// </summary>
    private static void Arity(string method, List<JsonNode?> a, int required, bool hasDefaults = false)
    {
        if (hasDefaults ? a.Count < required : a.Count != required)
        {
            throw new XapiError("MESSAGE_PARAMETER_COUNT_MISMATCH", method, required.ToString(CultureInfo.InvariantCulture), a.Count.ToString(CultureInfo.InvariantCulture));
        }
    }

    private static string Str(List<JsonNode?> a, int i, string method) =>
        i < a.Count && a[i] is JsonValue v && v.TryGetValue<string>(out var s) ? s
        : i < a.Count && a[i] is JsonValue n ? n.ToString()
        : throw new XapiError("FIELD_TYPE_ERROR", method + " parameter " + i.ToString(CultureInfo.InvariantCulture));

    private static double Num(List<JsonNode?> a, int i, string method) =>
        i < a.Count && a[i] is JsonValue v && (v.TryGetValue<double>(out var d) || TryInteger(v, out d) || (v.TryGetValue<string>(out var s) && double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out d)))
            ? d
            : throw new XapiError("FIELD_TYPE_ERROR", method + " parameter " + i.ToString(CultureInfo.InvariantCulture));

    // An XML-RPC <int>/<i4>/<i8> arrives as a long (JSON-RPC numbers as JSON elements, which convert to double).
    private static bool TryInteger(JsonValue v, out double d)
    {
        var ok = v.TryGetValue<long>(out var l);
        d = l;
        return ok;
    }

    private static bool Bool(List<JsonNode?> a, int i, string method) =>
        i < a.Count && a[i] is JsonValue v && (v.TryGetValue<bool>(out var b) || (v.TryGetValue<string>(out var s) && bool.TryParse(s, out b)))
            ? b
            : throw new XapiError("FIELD_TYPE_ERROR", method + " parameter " + i.ToString(CultureInfo.InvariantCulture));

    private JsonObject Resolve(string cls, string r) =>
        Record(cls, r) ?? throw new XapiError("HANDLE_INVALID", cls, r);

    private SimHost HostArg(List<JsonNode?> a, int i, string method)
    {
        var r = Str(a, i, method);
        return Hosts.FirstOrDefault(h => h.Ref == r) ?? throw new XapiError("HANDLE_INVALID", "host", r);
    }

    private SimVm VmArg(List<JsonNode?> a, int i, string method)
    {
        var r = Str(a, i, method);
        return VmsByRef.TryGetValue(r, out var vm) ? vm : throw new XapiError("HANDLE_INVALID", "VM", r);
    }

    private void PoolArg(List<JsonNode?> a, int i, string method)
    {
        if (Str(a, i, method) != PoolRef)
        {
            throw new XapiError("HANDLE_INVALID", "pool", Str(a, i, method));
        }
    }

    private string Login(string user, string password, string originator)
    {
        if (user != User || password != Password)
        {
            throw new XapiError("SESSION_AUTHENTICATION_FAILED", user, "Authentication failure");
        }

        // XAPI keeps at most 500 sessions per user and originator: the oldest go.
        var same = Sessions.Values.Where(s => s.User == user && s.Originator == originator).OrderBy(s => s.CreatedAt).ToList();
        foreach (var old in same.Take(Math.Max(0, same.Count - 499)))
        {
            Sessions.Remove(old.Ref);
        }

        var session = new SimSession(NewRef(), Guid.NewGuid().ToString(), user, originator, Now);
        Sessions[session.Ref] = session;
        return session.Ref;
    }

    // ---- event.from ----------------------------------------------------------------------------

    /// <summary>
    /// event.from as ocaml/xapi/xapi_event.ml has it (<c>from</c>, <c>from_inner</c>, <c>collect_events</c>): the token is
    /// <c>"%020Ld,%020Ld"</c> (a DB generation, and one for messages) or <c>""</c> for generation 0; anything else raises
    /// EVENT_FROM_TOKEN_PARSE_FAILURE [token]. Subscriptions are <c>"*"</c>, <c>"class"</c> or <c>"class/ref"</c>,
    /// lowercased; a class that names no table matches nothing, which is no error (the call waits out its timeout).
    /// From each object's created/modified generations and the deleted rows: created after the token is <c>add</c>,
    /// else modified after it <c>mod</c>, deleted after it (and created before) <c>del</c> without snapshot; an object
    /// created and deleted since the token is not reported. No event means waiting until something matches or the
    /// timeout passes. EVENTS_LOST is never raised here: only the deprecated event.next raises it.
    /// </summary>
    private Task<JsonNode?> EventFrom(JsonNode? classesNode, string token, double timeout)
    {
        List<string> classes = classesNode switch
        {
            JsonArray arr => arr.Select(c => c?.ToString() ?? "").ToList(),
            JsonValue v => [v.ToString()],
            _ => [],
        };
        var subs = classes.Select(c =>
        {
            if (c == "*")
            {
                return (Class: "*", Ref: (string?)null);
            }

            var slash = c.IndexOf('/', StringComparison.Ordinal);
            return slash < 0 ? (Class: c.ToLowerInvariant(), Ref: null) : (Class: c[..slash].ToLowerInvariant(), Ref: c[(slash + 1)..]);
        }).ToList();
        if (!TryParseEventToken(token, out var from))
        {
            throw new XapiError("EVENT_FROM_TOKEN_PARSE_FAILURE", token);
        }

        var immediate = EventBatch(subs, from);
        if (immediate["events"] is JsonArray { Count: > 0 } || timeout <= 0)
        {
            return Done(immediate);
        }

        return WaitForEventsAsync(subs, from, Now + Math.Min(timeout, 3600));
    }

    /// <summary>xapi_event.ml Token.of_string: <c>""</c> is generation 0, otherwise exactly two integers split by a comma.</summary>
    internal static bool TryParseEventToken(string token, out long generation)
    {
        generation = 0;
        if (token.Length == 0)
        {
            return true;
        }

        var parts = token.Split(',');
        return parts.Length == 2
            && long.TryParse(parts[0], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out generation)
            && long.TryParse(parts[1], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _);
    }

    internal static string EventToken(long generation) =>
        generation.ToString("D20", CultureInfo.InvariantCulture) + "," + 0L.ToString("D20", CultureInfo.InvariantCulture);

    private async Task<JsonNode?> WaitForEventsAsync(List<(string Class, string? Ref)> subs, long from, double until)
    {
        while (true)
        {
            Task changed;
            double remaining;
            lock (_gate)
            {
                Advance();
                var batch = EventBatch(subs, from);
                remaining = until - Now;
                if (batch["events"] is JsonArray { Count: > 0 } || remaining <= 0)
                {
                    return batch;
                }

                changed = ChangedTask;
            }

            var scale = _clock is Core.Time.ScaledTimeProvider s ? s.Scale : 1.0;
            var wall = TimeSpan.FromSeconds(Math.Max(0.001, remaining / scale));
            await Task.WhenAny(changed, Task.Delay(wall, TimeProvider.System));
        }
    }

    private JsonObject EventBatch(List<(string Class, string? Ref)> subs, long from)
    {
        bool Wanted(string cls, string r) => subs.Any(s => (s.Class == "*" || s.Class == cls) && (s.Ref is null || s.Ref == r));
        var changes = new List<(long Generation, string Class, string Ref, string Op)>();
        if (from < FirstGeneration)
        {
            // Every object is newer than the token: each one is an add.
            foreach (var c in ApiClasses)
            {
                var ec = EventClass(c);
                foreach (var r in RefsOf(c))
                {
                    if (Wanted(ec, r))
                    {
                        changes.Add((StatOf(ec, r).Modified, ec, r, "add"));
                    }
                }
            }
        }
        else
        {
            foreach (var ((cls, r), (created, modified)) in LiveStats)
            {
                if (modified > from && Wanted(cls, r))
                {
                    changes.Add((modified, cls, r, created > from ? "add" : "mod"));
                }
            }

            foreach (var ((cls, r), (created, deleted)) in DeletedStats)
            {
                if (deleted > from && created <= from && Wanted(cls, r))
                {
                    changes.Add((deleted, cls, r, "del"));
                }
            }
        }

        var events = new JsonArray();
        var last = from;
        foreach (var (generation, cls, r, op) in changes.OrderBy(c => c.Generation))
        {
            last = Math.Max(last, generation);
            var e = new JsonObject
            {
                ["id"] = generation.ToString(CultureInfo.InvariantCulture),
                ["timestamp"] = "0.0",
                ["class"] = cls,
                ["operation"] = op,
                ["ref"] = r,
            };
            if (op != "del")
            {
                // CA-91931: an object gone before its snapshot could be taken is left out.
                if (Record(ApiClass(cls) ?? cls, r) is not { } snapshot)
                {
                    continue;
                }

                e["snapshot"] = snapshot.DeepClone();
            }

            events.Add(e);
        }

        // Every table with the count of all its rows, as Int32 (event_types.ml rpc_of_event_from: <i4> over XML-RPC).
        var counts = new JsonObject();
        foreach (var c in ApiClasses)
        {
            counts[EventClass(c)] = RefsOf(c).Count();
        }

        return new JsonObject
        {
            ["events"] = events,
            ["valid_ref_counts"] = counts,
            ["token"] = EventToken(last),
        };
    }

    // ---- pool ----------------------------------------------------------------------------------

    private Task<JsonNode?> PoolDisableHa(string m, List<JsonNode?> a)
    {
        Arity(m, a, 0);
        RefuseDuringHaTransition();
        if (!HaEnabled)
        {
            throw new XapiError("HA_NOT_ENABLED");
        }

        NoteStateChange();
        return AfterHaTransition("ha_disable", () =>
        {
            HaEnabled = false;
            foreach (var vdiRef in HaStatefiles)
            {
                if (Vdis.Remove(vdiRef, out var vdi))
                {
                    vdi.Sr.VdiRefs.Remove(vdiRef);
                    Touch("vdi", vdiRef, "del");
                }
            }

            HaStatefiles = [];
            HaHeartbeatSrNames.Clear();
            HaConfiguration = [];
            Touch("pool", PoolRef, "mod");
            Audit.Event("ha.disable", new Dictionary<string, object?>());
        });
    }

    private void RefuseDuringHaTransition()
    {
        RefuseDuringPoolOperation();
        if (HaTransition is { } op)
        {
            throw new XapiError(op == "ha_disable" ? "HA_DISABLE_IN_PROGRESS" : "HA_ENABLE_IN_PROGRESS");
        }
    }

    /// <summary>The HA transition happens after the scenario's transitionSeconds (at once when 0); the call (or its
    /// Async task) returns then.</summary>
    private Task<JsonNode?> AfterHaTransition(string operation, Action transition)
    {
        var seconds = Scenario.Pool.Ha?.TransitionSeconds ?? 0;
        if (seconds <= 0)
        {
            transition();
            return Done("");
        }

        HaTransition = operation;
        Touch("pool", PoolRef, "mod");
        var done = new TaskCompletionSource<JsonNode?>(TaskCreationOptions.RunContinuationsAsynchronously);
        Schedule(Now + seconds, () =>
        {
            HaTransition = null;
            transition();
            done.SetResult(JsonValue.Create(""));
        });
        return done.Task;
    }

    private Task<JsonNode?> PoolEnableHa(string m, List<JsonNode?> a)
    {
        Arity(m, a, 2);
        RefuseDuringHaTransition();
        if (HaEnabled)
        {
            throw new XapiError("HA_IS_ENABLED");
        }

        if (Hosts.FirstOrDefault(h => !h.Live || h.Power != HostPower.Up) is { } offline)
        {
            throw new XapiError("HOST_OFFLINE", offline.Ref);
        }

        var srRefs = a[0] is JsonArray arr ? arr.Select(n => n?.ToString() ?? "").ToList() : throw new XapiError("FIELD_TYPE_ERROR", "heartbeat_srs");
        var config = a[1] is JsonObject o ? o.ToDictionary(kv => kv.Key, kv => kv.Value?.ToString() ?? "") : throw new XapiError("FIELD_TYPE_ERROR", "configuration");
        var given = srRefs.Select(r => Srs.FirstOrDefault(s => s.Ref == r) ?? throw new XapiError("HANDLE_INVALID", "SR", r)).ToList();
        // xapi_ha.ml enable_internal: "we'll create a state file in one compatible SR": the first one given, or the first
        // that list_srs_which_can_host_statefile finds; none at all is CANNOT_CREATE_STATE_FILE [].
        var sr = given.Count > 0
            ? given[0]
            : Srs.FirstOrDefault(s => s.Shared && s.ContentType != "iso") ?? throw new XapiError("CANNOT_CREATE_STATE_FILE");
        if (!sr.Shared)
        {
            // xha_statefile.ml check_sr_can_host_statefile: every host needs a PBD to the SR.
            throw new XapiError("SR_NO_PBDS", sr.Ref);
        }

        if (sr.ContentType == "iso")
        {
            // ... and its SM driver VDI_GENERATE_CONFIG or VDI_ATTACH_OFFLINE, which ISO lacks (xapi-project/sm drivers/ISOSR.py).
            throw new XapiError("SR_OPERATION_NOT_SUPPORTED", sr.Ref);
        }

        List<SimSr> srs = [sr];

        NoteStateChange();
        return AfterHaTransition("ha_enable", () =>
        {
            HaEnabled = true;
            HaStatefiles = srs.Select(CreateStatefile).ToList();
            HaHeartbeatSrNames.Clear();
            HaHeartbeatSrNames.AddRange(srs.Select(s => s.Name));
            HaConfiguration = config;
            Touch("pool", PoolRef, "mod");
            var effective = config.TryGetValue("timeout", out var t) ? t : PoolOtherConfig.GetValueOrDefault("default_ha_timeout", "60");
            Audit.Event("ha.enable", new Dictionary<string, object?>
            {
                ["requestedSrs"] = given.Select(s => s.Name).ToList(),
                ["heartbeatSrs"] = srs.Select(s => s.Name).ToList(),
                ["configuration"] = config,
                ["timeoutSeconds"] = effective,
                ["hostFailuresToTolerate"] = HaHostFailuresToTolerate,
                ["allowOvercommit"] = HaAllowOvercommit,
            });
        });
    }

    private Task<JsonNode?> PoolSetNtol(string m, List<JsonNode?> a)
    {
        Arity(m, a, 2);
        PoolArg(a, 0, m);
        var n = (long)Num(a, 1, m);
        if (n < 0)
        {
            throw new XapiError("INVALID_VALUE", "ha_host_failures_to_tolerate", n.ToString(CultureInfo.InvariantCulture));
        }

        NoteStateChange();
        HaHostFailuresToTolerate = n;
        Touch("pool", PoolRef, "mod");
        Audit.Event("ha.setHostFailuresToTolerate", new Dictionary<string, object?> { ["value"] = n });
        return Done("");
    }

    private Task<JsonNode?> PoolSetOvercommit(string m, List<JsonNode?> a)
    {
        Arity(m, a, 2);
        PoolArg(a, 0, m);
        NoteStateChange();
        HaAllowOvercommit = Bool(a, 1, m);
        Touch("pool", PoolRef, "mod");
        Audit.Event("ha.setAllowOvercommit", new Dictionary<string, object?> { ["value"] = HaAllowOvercommit });
        return Done("");
    }

    private Task<JsonNode?> PoolAddOtherConfig(string m, List<JsonNode?> a)
    {
        Arity(m, a, 3);
        PoolArg(a, 0, m);
        var key = Str(a, 1, m);
        if (PoolOtherConfig.ContainsKey(key))
        {
            throw new XapiError("MAP_DUPLICATE_KEY", "pool", "other_config", PoolRef, key);
        }

        NoteStateChange();
        PoolOtherConfig[key] = Str(a, 2, m);
        Touch("pool", PoolRef, "mod");
        Audit.Event("pool.otherConfig.add", new Dictionary<string, object?> { ["key"] = key });
        return Done("");
    }

    private Task<JsonNode?> PoolRemoveOtherConfig(string m, List<JsonNode?> a)
    {
        Arity(m, a, 2);
        PoolArg(a, 0, m);
        var key = Str(a, 1, m);
        if (PoolOtherConfig.Remove(key))
        {
            NoteStateChange();
            Touch("pool", PoolRef, "mod");
            Audit.Event("pool.otherConfig.remove", new Dictionary<string, object?> { ["key"] = key });
        }

        return Done("");
    }

    // ---- host ----------------------------------------------------------------------------------

    private Task<JsonNode?> HostDisable(string m, List<JsonNode?> a)
    {
        // auto_enable (default true) arrived in 25.31.0 (idl/datamodel_host.ml disable); false persists host_auto_enable=false,
        // and only when the host was enabled (xapi/xapi_host.ml disable).
        Arity(m, a, 1, hasDefaults: Profile.HasAutoEnable);
        var h = HostArg(a, 0, m);
        var autoEnable = a.Count < 2 || Bool(a, 1, m);
        NoteStateChange();
        if (h.Enabled)
        {
            h.Enabled = false;
            h.AutoEnable &= autoEnable;
            Touch("host", h.Ref, "mod");
        }

        Audit.Event("host.disable", new Dictionary<string, object?> { ["host"] = h.Name });
        return Done("");
    }

    private Task<JsonNode?> HostEnable(string m, List<JsonNode?> a)
    {
        Arity(m, a, 1);
        var h = HostArg(a, 0, m);
        if (h.Power != HostPower.Up || !h.Live)
        {
            throw new XapiError("HOST_OFFLINE", h.Ref);
        }

        if (h.ToolstackReadyAt > Now)
        {
            throw new XapiError("HOST_STILL_BOOTING");
        }

        if (HostBusy(h) is { } busy)
        {
            throw busy;
        }

        // From 24.10.0 any pending mandatory guidance refuses a disabled host, reboot_host included (xapi/xapi_host.ml enable
        // -> assert_safe_to_reenable -> repository_helpers.ml assert_no_host_pending_mandatory_guidance, which raises it
        // with the host alone). The code is HOST_PENDING_MANDATORY_GUIDANCE_NOT_EMPTY, singular (xapi-consts/api_errors.ml).
        if (!h.Enabled && Profile.GuidanceKeepsHostDisabled && h.PendingGuidances.Count > 0)
        {
            throw new XapiError("HOST_PENDING_MANDATORY_GUIDANCE_NOT_EMPTY", h.Ref);
        }

        NoteStateChange();
        if (!h.Enabled)
        {
            h.Enabled = true;
            h.AutoEnable = true;
            Touch("host", h.Ref, "mod");
        }

        Audit.Event("host.enable", new Dictionary<string, object?> { ["host"] = h.Name });
        return Done("");
    }

    private Task<JsonNode?> HostReboot(string m, List<JsonNode?> a, bool powerOff)
    {
        Arity(m, a, 1);
        var h = HostArg(a, 0, m);
        // valid_operations sets the concurrent-operation error before host_not_disabled.
        if (HostBusy(h) is { } busy)
        {
            throw busy;
        }

        if (ClusteredSrDegraded() is { } degraded)
        {
            // Also set by valid_operations (xapi_host_helpers.ml): checked before the host's own state.
            throw new XapiError(degraded[0], degraded[1..]);
        }

        if (h.Enabled)
        {
            throw new XapiError("HOST_NOT_DISABLED");
        }

        if (h.Power != HostPower.Up || !h.Live)
        {
            // message_forwarding.ml do_op_on -> check_live.
            throw new XapiError("HOST_OFFLINE", h.Ref);
        }

        NoteStateChange();
        var resident = Vms.Count(v => v.ResidentOn == h && v.IsRunning && !v.IsControlDomain);
        Audit.Event(powerOff ? "host.shutdown" : "host.reboot", new Dictionary<string, object?> { ["host"] = h.Name, ["residentVms"] = resident });
        ScheduleShutdown(h, powerOff);
        return Done("");
    }

    /// <summary>
    /// xapi_host_helpers.ml valid_operations: a reboot or shutdown in progress (recorded as <c>shutdown</c> for both,
    /// xapi_host.ml reboot) blocks the others with OTHER_OPERATION_IN_PROGRESS ["host"; ref; operation; task].
    /// </summary>
    private static XapiError? HostBusy(SimHost h) =>
        h.CurrentOperations.FirstOrDefault() is { Key: { } task, Value: { } op }
            ? new XapiError("OTHER_OPERATION_IN_PROGRESS", "host", h.Ref, op, task)
            : null;

    private Task<JsonNode?> HostPowerOn(string m, List<JsonNode?> a)
    {
        Arity(m, a, 1);
        var h = HostArg(a, 0, m);
        // xapi_host_helpers.ml valid_operations, first error wins: the host must be thought down (host_metrics.live),
        // then it needs a power_on_mode. xapi_host.ml power_on: a plugin answer other than "True" is failwith, which
        // exnHelper.ml turns into INTERNAL_ERROR [Printexc.to_string e].
        if (h.Live || h.Power != HostPower.Down)
        {
            throw new XapiError("HOST_IS_LIVE", h.Ref);
        }

        if (h.PowerOnMode.Length == 0)
        {
            throw new XapiError("HOST_POWER_ON_MODE_DISABLED");
        }

        if (h.PowerOnFails)
        {
            Audit.Event("host.powerOn.failed", new Dictionary<string, object?> { ["host"] = h.Name, ["mode"] = h.PowerOnMode });
            throw new XapiError("INTERNAL_ERROR", "Failure(\"The host failed to power on.\")");
        }

        NoteStateChange();
        Audit.Event("host.powerOn", new Dictionary<string, object?> { ["host"] = h.Name });
        PowerOn(h);
        return Done("");
    }

    /// <summary>OTHER_OPERATION_IN_PROGRESS as xapi_vm_lifecycle.ml raises it: ["VM"; ref; current ops; their refs]
    /// (layout: ocaml/idl/datamodel_errors.ml, class, object, operation_type, operation_ref).</summary>
    /// xapi_vm_lifecycle.ml report_concurrent_operations_error: one operation by name and task, several as "{a,b}".
    private static string[]? BusyError(SimVm vm)
    {
        var ops = vm.CurrentOperations.ToList();
        return ops.Count switch
        {
            0 => null,
            1 => ["OTHER_OPERATION_IN_PROGRESS", "VM", vm.Ref, ops[0].Value, ops[0].Key],
            _ => ["OTHER_OPERATION_IN_PROGRESS", "VM", vm.Ref, "{" + string.Join(",", ops.Select(o => o.Value)) + "}", "{" + string.Join(",", ops.Select(o => o.Key)) + "}"],
        };
    }

    /// <summary>host.restart_agent(host) (idl/datamodel_host.ml, rio): the toolstack restarts after 10 s.</summary>
    private Task<JsonNode?> HostRestartAgent(string m, List<JsonNode?> a)
    {
        Arity(m, a, 1);
        var h = HostArg(a, 0, m);
        if (h.Power != HostPower.Up)
        {
            throw new XapiError("HOST_OFFLINE", h.Ref);
        }

        NoteStateChange();
        Audit.Event("host.restartAgent", new Dictionary<string, object?> { ["host"] = h.Name });
        ScheduleToolstackRestart(h);
        return Done("");
    }

    /// <summary>Why a VM cannot leave its host for <paramref name="target"/> (null target: for any host).</summary>
    private string[]? MoveBlocker(SimVm vm, SimHost? target)
    {
        if (SimMigrationRules.Refusal(vm) is { } refusal)
        {
            return refusal;
        }

        foreach (var vbdRef in vm.VbdRefs)
        {
            if (Vbds[vbdRef].Vdi?.Sr is { } sr && (target is null ? !sr.Shared : !SeesSr(target, sr)))
            {
                return ["VM_REQUIRES_SR", vm.Ref, sr.Ref];
            }
        }

        return null;
    }

    /// <summary>xapi_vm_helpers.ml which_specified_SRs_not_available_on_host: a host sees an SR through a PBD that is
    /// currently attached.</summary>
    private bool SeesSr(SimHost host, SimSr sr) => sr.PbdRefs.Any(p => Pbds[p].Host == host && Pbds[p].CurrentlyAttached);

    /// <summary>The first SR of the VM's disks the host cannot see (assert_can_see_SRs), or null.</summary>
    private SimSr? UnseenSr(SimVm vm, SimHost host) =>
        vm.VbdRefs.Select(v => Vbds[v].Vdi?.Sr).FirstOrDefault(sr => sr is not null && !SeesSr(host, sr));

    /// <summary>PBD.plug (xapi_pbd.ml plug): a no-op when attached; the pbdPlugFails fault's error while the storage is
    /// unreachable.</summary>
    private Task<JsonNode?> PbdPlug(string m, List<JsonNode?> a)
    {
        Arity(m, a, 1);
        var r = Str(a, 0, m);
        var pbd = Pbds.TryGetValue(r, out var p) ? p : throw new XapiError("HANDLE_INVALID", "PBD", r);
        if (pbd.CurrentlyAttached)
        {
            return Done("");
        }

        if (pbd.Host.Power != HostPower.Up || !pbd.Host.Live)
        {
            throw new XapiError("HOST_OFFLINE", pbd.Host.Ref);
        }

        NoteStateChange();
        if (PlugFaults.TryGetValue((pbd.Host.Name, pbd.Sr.Name), out var fault) && fault.Error is { } error)
        {
            Audit.Event("pbd.plugFailed", new Dictionary<string, object?> { ["host"] = pbd.Host.Name, ["sr"] = pbd.Sr.Name, ["by"] = "PBD.plug" });
            throw new XapiError(error[0], error[1..]);
        }

        pbd.CurrentlyAttached = true;
        Touch("pbd", pbd.Ref, "mod");
        Audit.Event("pbd.plug", new Dictionary<string, object?> { ["host"] = pbd.Host.Name, ["sr"] = pbd.Sr.Name });
        return Done("");
    }

    private Dictionary<SimVm, string[]> Preventing(SimHost h)
    {
        // xapi_host.ml compute_evacuation_plan_no_wlb: the targets are every other enabled host; none gives each VM
        // NO_HOSTS_AVAILABLE [vm]; a VM must pass assert_can_boot_here on every target (a target that is not live:
        // HOST_NOT_LIVE []); one the memory bin-pack cannot place gets HOST_NOT_ENOUGH_FREE_MEMORY [vm].
        var result = new Dictionary<SimVm, string[]>();
        var targets = Hosts.Where(x => x != h && x.Enabled).ToList();
        var free = targets.Where(x => x.Live && x.Power == HostPower.Up).ToDictionary(x => x, FreeBytes);
        foreach (var vm in Vms.Where(v => v.ResidentOn == h && v.IsRunning && !v.IsControlDomain).OrderByDescending(v => v.NeededBytes))
        {
            if (targets.Count == 0)
            {
                result[vm] = ["NO_HOSTS_AVAILABLE", vm.Ref];
                continue;
            }

            if (BusyError(vm) is { } busy)
            {
                // xapi_host.ml checks each VM's pool_migrate strictly: a VM busy with another operation prevents evacuation.
                result[vm] = busy;
                continue;
            }

            if (HaEnabled && vm.HaRestartPriority != "restart")
            {
                // xapi_host.ml get_vms_which_prevent_evacuation: with HA on, unprotected VMs are partitioned out and
                // reported as such before any other check, so their real blockers stay hidden (findings 5.5).
                result[vm] = ["HOST_EVACUATE_VM_NOT_HA_PROTECTED", vm.Ref];
                continue;
            }

            if (MoveBlocker(vm, null) is { } blocker)
            {
                result[vm] = blocker;
                continue;
            }

            if (free.Count < targets.Count)
            {
                result[vm] = ["HOST_NOT_LIVE"];
                continue;
            }

            // assert_can_boot_here against every target: one enabled host that cannot see the VM's SR is enough.
            if (targets.Select(t => UnseenSr(vm, t)).FirstOrDefault(sr => sr is not null) is { } unseen)
            {
                result[vm] = ["VM_REQUIRES_SR", vm.Ref, unseen.Ref];
                continue;
            }

            var target = free.Where(kv => kv.Value >= vm.NeededBytes).OrderByDescending(kv => kv.Value).Select(kv => kv.Key).FirstOrDefault();
            if (target is null)
            {
                result[vm] = ["HOST_NOT_ENOUGH_FREE_MEMORY", vm.Ref];
                continue;
            }

            free[target] -= vm.NeededBytes;
        }

        return result;
    }

    private Task<JsonNode?> HostPreventing(string m, List<JsonNode?> a)
    {
        Arity(m, a, 1);
        var h = HostArg(a, 0, m);
        var o = new JsonObject();
        foreach (var (vm, reason) in Preventing(h))
        {
            o[vm.Ref] = new JsonArray(reason.Select(x => (JsonNode?)x).ToArray());
        }

        return Done(o);
    }

    private Task<JsonNode?> HostAssertCanEvacuate(string m, List<JsonNode?> a)
    {
        Arity(m, a, 1);
        var h = HostArg(a, 0, m);
        var p = Preventing(h);
        if (p.Count > 0)
        {
            // xapi_host.ml assert_can_evacuate: one parameter, "CODE,param,...|CODE,..." (the VM only where a code names it).
            throw new XapiError("CANNOT_EVACUATE_HOST", string.Join("|", p.Select(kv => string.Join(",", kv.Value))));
        }

        return Done("");
    }

    private Task<JsonNode?> HostFreeMemory(string m, List<JsonNode?> a)
    {
        Arity(m, a, 1);
        return Done(JsonValue.Create(FreeBytes(HostArg(a, 0, m))));
    }

    private Task<JsonNode?> HostServerTime(string m, List<JsonNode?> a)
    {
        Arity(m, a, 1);
        var h = HostArg(a, 0, m);
        if (h.Power == HostPower.Down)
        {
            throw new XapiError("HOST_OFFLINE", h.Ref);
        }

        return Done(Date(NowTime));
    }

    private Task<JsonNode?> HostEvacuate(string m, List<JsonNode?> a, SimTask? task)
    {
        // network from 1.297.0, evacuate_batch_size from v23.28.0 (see XapiProfile); with a default the generated server
        // takes any longer list and ignores what it does not know. Batches of evacuate_batch_size, else xapi.conf
        // evacuation-batch-size (default 10), from 22.24.0; before, one VM at a time (v1.249.41 xapi/xapi_host.ml).
        Arity(m, a, 1, hasDefaults: Profile.EvacuateTakesNetwork);
        var h = HostArg(a, 0, m);
        var networkRef = a.Count >= 2 && Profile.EvacuateTakesNetwork ? Str(a, 1, m) : "OpaqueRef:NULL";
        var asked = a.Count >= 3 && Profile.EvacuateTakesBatchSize ? (long)Num(a, 2, m) : 0;
        var batch = !Profile.EvacuatesInParallel ? 1 : asked > 0 ? (int)Math.Min(asked, int.MaxValue) : 10;
        if (HaEnabled && Vms.FirstOrDefault(v => v.ResidentOn == h && v.IsRunning && !v.IsControlDomain && v.HaRestartPriority != "restart") is { } unprotected)
        {
            throw new XapiError("HOST_EVACUATE_VM_NOT_HA_PROTECTED", unprotected.Ref);
        }

        var preventing = Preventing(h);
        if (preventing.Count > 0)
        {
            // xapi_host.ml evacuate: the first error of the plan, as the plan has it.
            var reason = preventing.First().Value;
            throw new XapiError(reason[0], reason[1..]);
        }

        var queue = new Queue<SimVm>(Vms.Where(v => v.ResidentOn == h && v.IsRunning && !v.IsControlDomain).OrderByDescending(v => v.NeededBytes));
        SimNetwork? network = null;
        if (networkRef != "OpaqueRef:NULL")
        {
            // xapi_host.ml evacuate assert_valid_networks: every destination of the plan, before any VM moves.
            network = Networks.FirstOrDefault(n => n.Ref == networkRef) ?? throw new XapiError("HANDLE_INVALID", "network", networkRef);
            foreach (var dest in Hosts.Where(x => x != h && x.Enabled && x.Live && x.Power == HostPower.Up).OrderBy(x => x.Name, StringComparer.Ordinal))
            {
                MigrationNetworkOn(networkRef, dest);
            }
        }

        NoteStateChange();
        Audit.Event("host.evacuate", new Dictionary<string, object?> { ["host"] = h.Name, ["batch"] = batch, ["network"] = network?.Name });
        return EvacuateAsync(h, queue, batch, task, network);
    }

    private async Task<JsonNode?> EvacuateAsync(SimHost h, Queue<SimVm> queue, int batch, SimTask? task, SimNetwork? network)
    {
        var total = Math.Max(1, queue.Count);
        var done = 0;
        var running = new List<Task>();
        while (true)
        {
            lock (_gate)
            {
                while (running.Count < batch && queue.Count > 0)
                {
                    var vm = queue.Dequeue();
                    // XAPI's own choice: the live enabled host with the most free memory, rebooted or not.
                    var target = Hosts.Where(x => x != h && x.Enabled && x.Live && x.Power == HostPower.Up && FreeBytes(x) >= vm.NeededBytes && UnseenSr(vm, x) is null)
                        .OrderByDescending(FreeBytes).FirstOrDefault() ?? throw new XapiError("NO_HOSTS_AVAILABLE", vm.Ref);
                    // xapi_host.ml evacuate passes live=true (and the network), never compress: the pool's default decides.
                    running.Add(StartMigration(vm, target, null, null, network, UseCompression(null)).Done.Task);
                }

                if (running.Count == 0)
                {
                    return "";
                }
            }

            var finished = await Task.WhenAny(running);
            running.Remove(finished);
            await finished;
            done++;
            if (task is not null)
            {
                lock (_gate)
                {
                    task.Progress = (double)done / total;
                    Touch("task", task.Ref, "mod");
                }
            }
        }
    }

    // ---- VM ------------------------------------------------------------------------------------

    private void CheckCanRunOn(SimVm vm, SimHost target)
    {
        if (!target.Live || target.Power != HostPower.Up)
        {
            // xapi_vm_helpers.ml assert_host_is_live: no parameters.
            throw new XapiError("HOST_NOT_LIVE");
        }

        if (!target.Enabled)
        {
            throw new XapiError("HOST_DISABLED", target.Ref);
        }

        if (UnseenSr(vm, target) is { } unseen)
        {
            throw new XapiError("VM_REQUIRES_SR", vm.Ref, unseen.Ref);
        }

        var free = FreeBytes(target);
        if (vm.ResidentOn != target && free < vm.NeededBytes)
        {
            throw new XapiError("HOST_NOT_ENOUGH_FREE_MEMORY", vm.NeededBytes.ToString(CultureInfo.InvariantCulture), free.ToString(CultureInfo.InvariantCulture));
        }
    }

    private Task<JsonNode?> VmPoolMigrate(string m, List<JsonNode?> a, SimTask? task)
    {
        Arity(m, a, 3);
        var vm = VmArg(a, 0, m);
        var target = HostArg(a, 1, m);
        var options = a[2] is JsonObject o ? o.ToDictionary(kv => kv.Key, kv => kv.Value?.ToString() ?? "") : throw new XapiError("FIELD_TYPE_ERROR", "options");
        RefuseControlDomain(vm);

        if (vm.PowerState != "Running")
        {
            throw new XapiError("VM_BAD_POWER_STATE", vm.Ref, "running", vm.PowerState.ToLowerInvariant());
        }

        if (BusyError(vm) is { } busy)
        {
            throw new XapiError(busy[0], busy[1..]);
        }

        if (vm.ResidentOn == target)
        {
            throw new XapiError("HOST_CANNOT_ATTACH_NETWORK", target.Ref, NetworkRef);
        }

        if (vm.ResidentOn is not { Power: HostPower.Up })
        {
            throw new XapiError("HOST_NOT_LIVE");
        }

        if (MoveBlocker(vm, target) is { } blocker)
        {
            throw new XapiError(blocker[0], blocker[1..]);
        }

        CheckCanRunOn(vm, target);
        // xapi_vm_migrate.ml pool_migrate: the network option picks the destination's address on it (1.297.0+).
        var network = Profile.PoolMigrateTakesNetwork && options.TryGetValue("network", out var networkRef) ? MigrationNetworkOn(networkRef, target) : null;
        var compressed = UseCompression(options);
        NoteStateChange();
        var migration = StartMigration(vm, target, task, options, network, compressed);
        return migration.Done.Task.ContinueWith<JsonNode?>(
            t => t.IsCompletedSuccessfully ? JsonValue.Create("") : throw t.Exception!.InnerException!,
            CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>xapi_network_attach_helpers.ml assert_valid_ip_configuration_on_network_for_host: the host's first PIF on
    /// the network, plugged, with a primary address; the management network is a network like any other.</summary>
    private SimNetwork MigrationNetworkOn(string networkRef, SimHost host)
    {
        var network = Networks.FirstOrDefault(n => n.Ref == networkRef) ?? throw new XapiError("HANDLE_INVALID", "network", networkRef);
        var pif = network.Pifs.FirstOrDefault(p => p.Host == host) ?? throw new XapiError("PIF_NOT_PRESENT", host.Ref, network.Ref);
        if (!pif.Attached)
        {
            throw new XapiError("REQUIRED_PIF_IS_UNPLUGGED", pif.Ref);
        }

        return pif.Ip.Length == 0 ? throw new XapiError("INTERFACE_HAS_NO_IP", pif.Ref) : network;
    }

    /// <summary>xapi_vm_migrate.ml use_compression (22.23.0+): a compress option read as get_bool_option reads it
    /// (true/on/1, false/off/0, anything else as absent), else pool.migration_compression (22.33.0+; false before).</summary>
    private bool UseCompression(IReadOnlyDictionary<string, string>? options)
    {
        if (!Profile.HasStreamCompression)
        {
            return false;
        }

        var word = options?.GetValueOrDefault("compress")?.ToLowerInvariant();
        return word switch
        {
            "true" or "on" or "1" => true,
            "false" or "off" or "0" => false,
            _ => Profile.HasPoolMigrationCompression && Scenario.Pool.MigrationCompression,
        };
    }

    private Task<JsonNode?> VmAssertCanBootHere(string m, List<JsonNode?> a)
    {
        Arity(m, a, 2);
        var vm = VmArg(a, 0, m);
        var target = HostArg(a, 1, m);
        CheckCanRunOn(vm, target);
        return Done("");
    }

    // ---- task ----------------------------------------------------------------------------------

    private Task<JsonNode?> TaskCancel(string m, List<JsonNode?> a)
    {
        Arity(m, a, 1);
        var r = Str(a, 0, m);
        if (!Tasks.TryGetValue(r, out var task))
        {
            throw new XapiError("HANDLE_INVALID", "task", r);
        }

        if (task.Migration is { } mig && task.Status == "pending" && ActiveMigrations.Contains(mig))
        {
            CancelMigration(mig);
        }
        else if (task.Cancel is { } cancel && task.Status == "pending")
        {
            cancel();
        }

        return Done("");
    }

    private Task<JsonNode?> TaskDestroy(string m, List<JsonNode?> a)
    {
        Arity(m, a, 1);
        var r = Str(a, 0, m);
        if (!Tasks.TryGetValue(r, out var task))
        {
            throw new XapiError("HANDLE_INVALID", "task", r);
        }

        Tasks.Remove(r);
        Touch("task", task.Ref, "del");
        return Done("");
    }
}
