using System.Text.Json.Nodes;

namespace RollingReboot.Xapi.Tests;

/// <summary>The client over real HTTPS sockets against canned answers: wire shapes, fallbacks, refusals.</summary>
public sealed class XapiClientTests
{
    [Fact]
    public async Task Call_BareArrayErrorFromServer_IsTypedException()
    {
        await using var server = await CannedXapiServer.StartAsync(Respond.LoginThen((c, _) => Respond.Json(c, """{"jsonrpc":"2.0","error":["HOST_STILL_BOOTING"],"id":0}""")));
        await using var client = server.Client();
        var e = await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("VM.get_all", []));
        Assert.Equal("HOST_STILL_BOOTING", e.Code);
    }

    [Fact]
    public async Task Call_Http500HtmlPage_IsProtocolErrorNotCrash()
    {
        await using var server = await CannedXapiServer.StartAsync(Respond.LoginThen((c, _) => Respond.Text(c, "text/html", "<html><title>500 Internal Server Error</title></html>", 500)));
        await using var client = server.Client();
        var e = await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("VM.get_all", []));
        Assert.Equal(XapiException.ProtocolError, e.Code);
        Assert.Contains("HTTP 500", e.Parameters[0], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Call_HostAnswersJsonWithXml_FallsBackToXmlRpcOnSlash()
    {
        await using var server = await CannedXapiServer.StartAsync((c, body) =>
            c.Request.Path == "/jsonrpc"
                ? Respond.Text(c, "text/xml", XmlRpcReply("<member><name>Status</name><value>Failure</value></member><member><name>ErrorDescription</name><value><array><data><value>MESSAGE_METHOD_UNKNOWN</value></data></array></value></member>"))
                : Respond.Text(c, "text/xml", XmlRpcReply("<member><name>Status</name><value>Success</value></member><member><name>Value</name>"
                    + (body.Contains("login", StringComparison.Ordinal) ? "<value>OpaqueRef:s</value>" : "<value><array><data><value>OpaqueRef:vm1</value></data></array></value>") + "</member>")));
        await using var client = server.Client();
        var result = await client.CallAsync("VM.get_all", []);
        Assert.Equal("OpaqueRef:vm1", result![0]!.ToString());
        Assert.True(client.UsesXmlRpc);
        Assert.Contains(server.Requests, r => r.StartsWith("/ ", StringComparison.Ordinal) && r.Contains("<methodName>VM.get_all</methodName>", StringComparison.Ordinal));
    }

    // A methodResponse as xapi writes it (ocaml-rpc xmlrpc.ml add_response: strings untyped), by hand.
    private static string XmlRpcReply(string members) =>
        "<?xml version=\"1.0\"?><methodResponse><params><param><value><struct>" + members + "</struct></value></param></params></methodResponse>";

    [Fact]
    public async Task Call_SessionInvalid_LogsInAgainAndRetriesOnce()
    {
        var calls = 0;
        await using var server = await CannedXapiServer.StartAsync(Respond.LoginThen((c, _) =>
            Interlocked.Increment(ref calls) == 1
                ? Respond.Json(c, """{"jsonrpc":"2.0","error":{"code":1,"message":"SESSION_INVALID","data":["OpaqueRef:s1"]},"id":1}""")
                : Respond.Json(c, """{"jsonrpc":"2.0","result":["OpaqueRef:h"],"id":1}""")));
        await using var client = server.Client();
        var result = await client.CallAsync("host.get_all", []);
        Assert.Equal("OpaqueRef:h", result![0]!.ToString());
        Assert.Equal(2, server.Requests.Count(r => r.Contains("login_with_password", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task CallWithOptional_CountMismatch_RetriesWithFewerParameters()
    {
        await using var server = await CannedXapiServer.StartAsync(Respond.LoginThen((c, body) =>
        {
            var ps = JsonNode.Parse(body)!["params"]!.AsArray().Count;
            return ps > 2
                ? Respond.Json(c, $$"""{"jsonrpc":"2.0","error":{"code":1,"message":"MESSAGE_PARAMETER_COUNT_MISMATCH","data":["host.evacuate","2","{{ps}}"]},"id":1}""")
                : Respond.Json(c, """{"jsonrpc":"2.0","result":"","id":1}""");
        }));
        await using var client = server.Client();
        await client.CallWithOptionalAsync("host.evacuate", ["OpaqueRef:h"], ["OpaqueRef:net", 3L]);
        Assert.Equal(3, server.Requests.Count(r => r.Contains("host.evacuate", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Login_PinMismatch_RefusedWithFingerprintInMessage()
    {
        await using var server = await CannedXapiServer.StartAsync(Respond.LoginThen((c, _) => Respond.Json(c, """{"result":"","id":1}""")));
        await using var client = server.Client(pin: new string('a', 64));
        var e = await Assert.ThrowsAsync<XapiException>(() => client.LoginAsync());
        Assert.Equal(XapiException.CertificateRejected, e.Code);
        Assert.Contains(server.Fingerprint, e.Parameters[0], StringComparison.Ordinal);
        Assert.Empty(server.Requests);
    }

    [Fact]
    public async Task Login_Unreachable_IsTransportErrorQuickly()
    {
        await using var client = new XapiClient(new XapiClientOptions
        {
            Url = new Uri("https://127.0.0.1:1/"),
            UserName = "root",
            Password = "x",
            MasterSearchTimeout = TimeSpan.Zero,
        });
        var e = await Assert.ThrowsAsync<XapiException>(() => client.LoginAsync());
        Assert.True(e.IsUnreachable);
    }

    [Fact]
    public void HostUri_Ipv6Address_IsBracketed()
    {
        var uri = XapiClient.HostUri("fd00::12", new Uri("https://10.0.0.1:8443/"));
        Assert.Equal("https://[fd00::12]:8443/", uri.ToString());
        Assert.Equal("https://10.0.0.2:8443/", XapiClient.HostUri("10.0.0.2", new Uri("https://10.0.0.1:8443/")).ToString());
    }

    [Fact]
    public void Options_ToString_NeverShowsPassword()
    {
        var o = new XapiClientOptions { Url = new Uri("https://h/"), UserName = "root", Password = "hunter2-secret" };
        Assert.DoesNotContain("hunter2", o.ToString(), StringComparison.Ordinal);
    }
}
