using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace RollingReboot.Xapi.Tests;

/// <summary>A real HTTPS endpoint on loopback that answers with whatever the test says, to pin wire details.</summary>
internal sealed class CannedXapiServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private CannedXapiServer(WebApplication app, X509Certificate2 certificate)
    {
        _app = app;
        Certificate = certificate;
    }

    public X509Certificate2 Certificate { get; }

    public string Fingerprint => Convert.ToHexStringLower(SHA256.HashData(Certificate.RawData));

    public Uri Url => new(_app.Urls.First().Replace("0.0.0.0", "127.0.0.1", StringComparison.Ordinal));

    public List<string> Requests { get; } = [];

    public static async Task<CannedXapiServer> StartAsync(Func<HttpContext, string, Task> respond)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=canned", key, HashAlgorithmName.SHA256);
        var now = TimeProvider.System.GetUtcNow();
        using var created = request.CreateSelfSigned(now.AddDays(-1), now.AddDays(1));
        var certificate = X509CertificateLoader.LoadPkcs12(created.Export(X509ContentType.Pfx), null);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.UseHttps(certificate)));
        var app = builder.Build();
        CannedXapiServer? server = null;
        app.Run(async context =>
        {
            using var reader = new StreamReader(context.Request.Body);
            var body = await reader.ReadToEndAsync();
            lock (server!.Requests)
            {
                server.Requests.Add(context.Request.Path + " " + body);
            }

            await respond(context, body);
        });
        server = new CannedXapiServer(app, certificate);
        await app.StartAsync();
        return server;
    }

    public XapiClient Client(string? pin = null) => new(new XapiClientOptions
    {
        Url = Url,
        UserName = "root",
        Password = "secret",
        Certificates = new Tls.XapiCertificatePolicy([pin ?? Fingerprint]),
        MasterSearchTimeout = TimeSpan.FromSeconds(2),
    });

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        Certificate.Dispose();
    }
}

internal static class Respond
{
    public static Task Json(HttpContext c, string json, int status = 200)
    {
        c.Response.StatusCode = status;
        c.Response.ContentType = "application/json";
        return c.Response.WriteAsync(json);
    }

    public static Task Text(HttpContext c, string contentType, string text, int status = 200)
    {
        c.Response.StatusCode = status;
        c.Response.ContentType = contentType;
        return c.Response.WriteAsync(text);
    }

    /// <summary>Answers login with a session and everything else with <paramref name="other"/>.</summary>
    public static Func<HttpContext, string, Task> LoginThen(Func<HttpContext, string, Task> other) => (c, body) =>
        body.Contains("session.login_with_password", StringComparison.Ordinal)
            ? Json(c, """{"jsonrpc":"2.0","result":"OpaqueRef:s1","id":1}""")
            : body.Contains("session.logout", StringComparison.Ordinal)
                ? Json(c, """{"jsonrpc":"2.0","result":"","id":1}""")
                : other(c, body);
}
