// The GL helpers of gl_helpers.hpp: clear, draw and read back textures through a temporary
// framebuffer, restoring the GL state they touch so a caller's rendering is unaffected.
#include "support/gl_helpers.hpp"

#include <algorithm>
#include <optional>
#include <string>

#include <fmt/format.h>

namespace texshare::testing {

using egl::Display;
using egl::gl_error_name;

namespace {

void drain_gl_errors() {
    // A lost context may report errors forever; a few reads clear anything a caller left.
    for (int i = 0; i < 16 && glGetError() != GL_NO_ERROR; ++i) {
    }
}

// A framebuffer object with `texture` as its colour attachment; restores the previous binding.
class ScopedFramebuffer {
public:
    ScopedFramebuffer() {
        glGetIntegerv(GL_FRAMEBUFFER_BINDING, &previous_);
        glGenFramebuffers(1, &framebuffer_);
        glBindFramebuffer(GL_FRAMEBUFFER, framebuffer_);
    }
    ScopedFramebuffer(const ScopedFramebuffer&) = delete;
    ScopedFramebuffer& operator=(const ScopedFramebuffer&) = delete;
    ~ScopedFramebuffer() {
        glBindFramebuffer(GL_FRAMEBUFFER, static_cast<GLuint>(previous_));
        glDeleteFramebuffers(1, &framebuffer_);
    }

    Result<void> attach(GLuint texture) {
        glFramebufferTexture2D(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0, GL_TEXTURE_2D, texture, 0);
        const GLenum status = glCheckFramebufferStatus(GL_FRAMEBUFFER);
        if (status != GL_FRAMEBUFFER_COMPLETE) {
            return make_error(Errc::unsupported, "framebuffer with texture {} is incomplete: {}", texture,
                              gl_error_name(status == 0 ? glGetError() : status));
        }
        return {};
    }

private:
    GLint previous_ = 0;
    GLuint framebuffer_ = 0;
};

struct ScopedTexture {
    GLuint name = 0;
    ScopedTexture() { glGenTextures(1, &name); }
    ScopedTexture(const ScopedTexture&) = delete;
    ScopedTexture& operator=(const ScopedTexture&) = delete;
    ~ScopedTexture() { glDeleteTextures(1, &name); }
};

Result<void> check_gl(std::string_view what) {
    if (const GLenum error = glGetError(); error != GL_NO_ERROR) {
        return make_error(Errc::unsupported, "{} failed: {}", what, gl_error_name(error));
    }
    return {};
}

Result<GLuint> compile(GLenum kind, const std::string& source) {
    const GLuint shader = glCreateShader(kind);
    const char* text = source.c_str();
    glShaderSource(shader, 1, &text, nullptr);
    glCompileShader(shader);
    GLint ok = GL_FALSE;
    glGetShaderiv(shader, GL_COMPILE_STATUS, &ok);
    if (ok == GL_TRUE) return shader;
    std::string log(1024, '\0');
    GLsizei length = 0;
    glGetShaderInfoLog(shader, static_cast<GLsizei>(log.size()), &length, log.data());
    glDeleteShader(shader);
    log.resize(static_cast<std::size_t>(std::max(length, 0)));
    return make_error(Errc::unsupported, "shader compile failed: {}", log);
}

// A program drawing `target` over the viewport with one big triangle (attribute 0).
Result<GLuint> blit_program(GLenum target) {
    const bool external = target == GL_TEXTURE_EXTERNAL_OES;
    auto vertex =
        compile(GL_VERTEX_SHADER,
                "#version 100\nattribute vec2 position;\nvarying vec2 uv;\n"
                "void main() { uv = position * 0.5 + 0.5; gl_Position = vec4(position, 0.0, 1.0); }\n");
    if (!vertex) return std::move(vertex).error();
    auto fragment =
        compile(GL_FRAGMENT_SHADER,
                fmt::format("#version 100\n{}precision mediump float;\nuniform {} source;\n"
                            "varying vec2 uv;\nvoid main() {{ gl_FragColor = texture2D(source, uv); }}\n",
                            external ? "#extension GL_OES_EGL_image_external : require\n" : "",
                            external ? "samplerExternalOES" : "sampler2D"));
    if (!fragment) {
        glDeleteShader(*vertex);
        return std::move(fragment).error();
    }
    const GLuint program = glCreateProgram();
    glAttachShader(program, *vertex);
    glAttachShader(program, *fragment);
    glBindAttribLocation(program, 0, "position");
    glLinkProgram(program);
    glDeleteShader(*vertex);  // flagged; freed with the program
    glDeleteShader(*fragment);
    GLint ok = GL_FALSE;
    glGetProgramiv(program, GL_LINK_STATUS, &ok);
    if (ok != GL_TRUE) {
        glDeleteProgram(program);
        return make_error(Errc::unsupported, "blit program failed to link");
    }
    return program;
}

}  // namespace

Result<void> clear_texture(const Display& display, GLuint texture, float red, float green, float blue,
                           float alpha) {
    if (auto current = display.make_current(); !current) return std::move(current).error();
    drain_gl_errors();
    ScopedFramebuffer framebuffer;
    if (auto attached = framebuffer.attach(texture); !attached) return attached;
    glClearColor(red, green, blue, alpha);
    glClear(GL_COLOR_BUFFER_BIT);
    glFinish();
    return check_gl(fmt::format("clear of texture {}", texture));
}

Result<void> draw_texture(const Display& display, GLenum source_target, GLuint source, GLuint destination,
                          std::uint32_t width, std::uint32_t height) {
    if (auto current = display.make_current(); !current) return std::move(current).error();
    drain_gl_errors();
    ScopedFramebuffer framebuffer;
    if (auto attached = framebuffer.attach(destination); !attached) return attached;
    auto program = blit_program(source_target);
    if (!program) return std::move(program).error();
    GLint previous_program = 0, previous_unit = 0, previous_texture = 0, previous_buffer = 0;
    GLint viewport[4] = {};
    glGetIntegerv(GL_CURRENT_PROGRAM, &previous_program);
    glGetIntegerv(GL_ACTIVE_TEXTURE, &previous_unit);
    glActiveTexture(GL_TEXTURE0);
    const bool external = source_target == GL_TEXTURE_EXTERNAL_OES;
    glGetIntegerv(external ? GL_TEXTURE_BINDING_EXTERNAL_OES : GL_TEXTURE_BINDING_2D, &previous_texture);
    glGetIntegerv(GL_ARRAY_BUFFER_BINDING, &previous_buffer);
    glGetIntegerv(GL_VIEWPORT, viewport);

    static constexpr GLfloat triangle[] = {-1.0F, -1.0F, 3.0F, -1.0F, -1.0F, 3.0F};
    glViewport(0, 0, static_cast<GLsizei>(width), static_cast<GLsizei>(height));
    glUseProgram(*program);
    glBindTexture(source_target, source);
    glUniform1i(glGetUniformLocation(*program, "source"), 0);
    glBindBuffer(GL_ARRAY_BUFFER, 0);  // client-side vertices
    glVertexAttribPointer(0, 2, GL_FLOAT, GL_FALSE, 0, triangle);
    glEnableVertexAttribArray(0);
    glDrawArrays(GL_TRIANGLES, 0, 3);
    glDisableVertexAttribArray(0);
    glFinish();
    auto drawn = check_gl(fmt::format("draw of texture {} into texture {}", source, destination));

    glBindBuffer(GL_ARRAY_BUFFER, static_cast<GLuint>(previous_buffer));
    glBindTexture(source_target, static_cast<GLuint>(previous_texture));
    glActiveTexture(static_cast<GLenum>(previous_unit));
    glUseProgram(static_cast<GLuint>(previous_program));
    glViewport(viewport[0], viewport[1], viewport[2], viewport[3]);
    glDeleteProgram(*program);
    return drawn;
}

Result<std::vector<std::uint8_t>> read_pixels(const Display& display, GLenum target, GLuint texture,
                                              std::uint32_t width, std::uint32_t height) {
    if (auto current = display.make_current(); !current) return std::move(current).error();
    drain_gl_errors();
    std::optional<ScopedTexture> copy;
    GLuint readable = texture;
    if (target != GL_TEXTURE_2D) {  // external textures cannot be attached to a framebuffer
        copy.emplace();
        GLint previous = 0;
        glGetIntegerv(GL_TEXTURE_BINDING_2D, &previous);
        glBindTexture(GL_TEXTURE_2D, copy->name);
        glTexImage2D(GL_TEXTURE_2D, 0, GL_RGBA, static_cast<GLsizei>(width), static_cast<GLsizei>(height), 0,
                     GL_RGBA, GL_UNSIGNED_BYTE, nullptr);
        glBindTexture(GL_TEXTURE_2D, static_cast<GLuint>(previous));
        if (auto drawn = draw_texture(display, target, texture, copy->name, width, height); !drawn) {
            return std::move(drawn).error();
        }
        readable = copy->name;
    }
    ScopedFramebuffer framebuffer;
    if (auto attached = framebuffer.attach(readable); !attached) return std::move(attached).error();
    std::vector<std::uint8_t> pixels(std::size_t{width} * height * 4);
    GLint alignment = 4;
    glGetIntegerv(GL_PACK_ALIGNMENT, &alignment);
    glPixelStorei(GL_PACK_ALIGNMENT, 1);
    glReadPixels(0, 0, static_cast<GLsizei>(width), static_cast<GLsizei>(height), GL_RGBA, GL_UNSIGNED_BYTE,
                 pixels.data());
    glPixelStorei(GL_PACK_ALIGNMENT, alignment);
    if (auto read = check_gl(fmt::format("glReadPixels of texture {}", texture)); !read) {
        return std::move(read).error();
    }
    return pixels;
}

}  // namespace texshare::testing
