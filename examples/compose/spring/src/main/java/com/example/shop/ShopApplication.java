package com.example.shop;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.web.bind.annotation.DeleteMapping;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.RestController;

/** A small Spring Boot service whose log lines tda captures. */
@SpringBootApplication
@RestController
public class ShopApplication {
    private static final Logger log = LoggerFactory.getLogger(ShopApplication.class);

    public static void main(String[] args) {
        SpringApplication.run(ShopApplication.class, args);
    }

    @GetMapping("/")
    public String index() {
        return "ok\n";
    }

    @DeleteMapping("/users/{id}")
    public String delete(@PathVariable long id) {
        log.info("user_deleted id={}", id);
        return "deleted\n";
    }
}
